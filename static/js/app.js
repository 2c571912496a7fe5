/*
 * Tenantry — page behaviour.
 * Loaded with `defer` after htmx. The CSP is `script-src 'self'`, so every
 * bit of behaviour lives here and is attached through event delegation
 * (works for content swapped in by htmx as well as for plain pages).
 */
(function () {
  'use strict';

  var doc = document;

  function closest(node, selector) {
    if (!node || node.nodeType !== 1) node = node && node.parentElement;
    return node ? node.closest(selector) : null;
  }

  function onReady(fn) {
    if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', fn);
    else fn();
  }

  /* ------------------------------------------------------------------ */
  /* htmx configuration                                                  */
  /* ------------------------------------------------------------------ */
  var htmx = window.htmx;
  if (htmx && htmx.config) {
    // No <style> injected by htmx (CSP); .htmx-indicator is styled in app.css.
    htmx.config.includeIndicatorStyles = false;
    // eval-based features (hx-on, trigger filters, js: values) cannot run
    // under script-src 'self' anyway; fail cleanly instead of hitting the CSP.
    htmx.config.allowEval = false;
    // Settling copies these attributes old -> new with setAttribute; a
    // "style" attribute set that way is an inline style the CSP refuses
    // (any element that ever had element.style touched carries one).
    htmx.config.attributesToSettle = ['class', 'width', 'height'];
    // First match wins.
    htmx.config.responseHandling = [
      { code: '204', swap: false },                 // nothing to render
      { code: '[23]..', swap: true },               // normal responses
      { code: '422', swap: true, error: false },    // form re-rendered with errors
      { code: '409', swap: true, error: false },    // stale edit: the form with the current state
      { code: '403', swap: true, error: false },    // "access denied" fragment
      { code: '[45]..', swap: false, error: true }, // shown in #htmx-error
      { code: '...', swap: false }
    ];
  }

  /* ------------------------------------------------------------------ */
  /* htmx error area (#htmx-error)                                       */
  /* ------------------------------------------------------------------ */
  var STATUS_TEXT = {
    400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
    405: 'Method Not Allowed', 408: 'Request Timeout', 409: 'Conflict',
    410: 'Gone', 413: 'Payload Too Large', 429: 'Too Many Requests',
    500: 'Internal Server Error', 502: 'Bad Gateway',
    503: 'Service Unavailable', 504: 'Gateway Timeout'
  };

  function errorBox() { return doc.getElementById('htmx-error'); }

  function showError(message) {
    var box = errorBox();
    if (!box) return;
    box.textContent = '';
    var text = doc.createElement('span');
    text.className = 'htmx-error__text';
    text.textContent = message;
    var close = doc.createElement('button');
    close.type = 'button';
    close.className = 'flash__close';
    close.setAttribute('aria-label', 'Dismiss');
    box.appendChild(text);
    box.appendChild(close);
    box.hidden = false;
  }

  function clearError() {
    var box = errorBox();
    if (!box || box.hidden) return;
    box.textContent = '';
    box.hidden = true;
  }

  function statusMessage(xhr) {
    var status = xhr ? xhr.status : 0;
    if (!status) return 'Network error \u2014 check your connection and try again.';
    var label = STATUS_TEXT[status] || (xhr.statusText || '').trim();
    var msg = 'The server answered ' + status + (label ? ' (' + label + ')' : '') + '.';
    if (status === 401) return msg + ' Your session may have expired \u2014 reload the page to sign in again.';
    if (status === 429) return msg + ' Please wait a moment before trying again.';
    if (status >= 500) return msg + ' Please try again in a moment.';
    return msg + ' The action could not be completed.';
  }

  doc.addEventListener('htmx:responseError', function (e) {
    showError(statusMessage(e.detail && e.detail.xhr));
  });
  doc.addEventListener('htmx:sendError', function () {
    showError('Network error \u2014 check your connection and try again.');
  });
  doc.addEventListener('htmx:timeout', function () {
    showError('The request timed out \u2014 check your connection and try again.');
  });
  doc.addEventListener('htmx:afterRequest', function (e) {
    if (e.detail && e.detail.successful === true) clearError();
  });

  // After a 422 re-render, move focus to the first invalid control.
  doc.addEventListener('htmx:afterSettle', function (e) {
    var d = e.detail || {};
    if (!d.xhr || d.xhr.status !== 422 || !d.target) return;
    var scope = d.target.isConnected ? d.target : doc;
    var bad = scope.querySelector(
      '[aria-invalid="true"], .field--error input, .field--error select, .field--error textarea');
    if (bad && typeof bad.focus === 'function') bad.focus();
  });

  // Content that asks for the reader's attention when it arrives (a
  // confirmation step, a bulk action's outcome) carries [data-autofocus].
  doc.addEventListener('htmx:afterSettle', function (e) {
    var d = e.detail || {};
    if (!d.target || !d.target.isConnected) return;
    var el = d.target.querySelector('[data-autofocus]');
    if (el && typeof el.focus === 'function') el.focus();
  });

  /* ------------------------------------------------------------------ */
  /* Dismissable panels: [data-dismiss="#id"] empties #id (Cancel of a   */
  /* confirmation step); so does Escape inside [data-dismiss-on-escape]. */
  /* Focus goes back to [data-return-focus] so the keyboard user is      */
  /* where they started.                                                 */
  /* ------------------------------------------------------------------ */
  function dismiss(selector, returnTo) {
    var box = selector && doc.querySelector(selector);
    if (box) box.innerHTML = '';
    var back = returnTo && doc.querySelector(returnTo);
    if (back && typeof back.focus === 'function') back.focus();
  }

  doc.addEventListener('click', function (e) {
    var btn = closest(e.target, '[data-dismiss]');
    if (!btn) return;
    e.preventDefault();
    dismiss(btn.getAttribute('data-dismiss'), btn.getAttribute('data-return-focus'));
  });

  doc.addEventListener('keydown', function (e) {
    if (e.key !== 'Escape') return;
    var panel = closest(e.target, '[data-dismiss-on-escape]');
    if (!panel) return;
    var btn = panel.querySelector('[data-dismiss]');
    dismiss(panel.getAttribute('data-dismiss-on-escape'), btn && btn.getAttribute('data-return-focus'));
  });

  /* ------------------------------------------------------------------ */
  /* Member picker: a combobox whose listbox htmx fills as you type      */
  /* (templates/components/_picker.html). Arrow keys move through the    */
  /* options (aria-activedescendant), Enter or a click picks one (the    */
  /* hidden user_id), Escape closes the list. Typing again clears the    */
  /* pick, so what is sent is always what the box shows.                 */
  /* ------------------------------------------------------------------ */
  function pickerParts(el) {
    var root = closest(el, '[data-picker]');
    if (!root) return null;
    return {
      root: root,
      input: root.querySelector('[role="combobox"]'),
      list: root.querySelector('[role="listbox"]'),
      value: root.querySelector('[data-picker-value]')
    };
  }

  function pickerOptions(p) {
    return Array.prototype.slice.call(p.list.querySelectorAll('[role="option"]:not([aria-disabled="true"])'));
  }

  function pickerOpen(p, open) {
    p.list.hidden = !open;
    p.input.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (!open) {
      p.input.removeAttribute('aria-activedescendant');
      pickerOptions(p).forEach(function (o) { o.setAttribute('aria-selected', 'false'); });
    }
  }

  function pickerActivate(p, option) {
    pickerOptions(p).forEach(function (o) {
      o.setAttribute('aria-selected', o === option ? 'true' : 'false');
      o.classList.toggle('is-active', o === option);
    });
    if (option) {
      p.input.setAttribute('aria-activedescendant', option.id);
      option.scrollIntoView({ block: 'nearest' });
    }
  }

  // A pick (or clearing the box) fires "change" on the hidden value, so a
  // picker in a filter form refreshes its results (hx-trigger="change").
  function pickerChanged(p) {
    p.value.dispatchEvent(new Event('change'));
  }

  function pickerChoose(p, option) {
    p.value.value = option.getAttribute('data-value');
    p.input.value = option.getAttribute('data-label');
    p.root.classList.add('is-picked');
    pickerOpen(p, false);
    p.input.focus();
    pickerChanged(p);
  }

  doc.addEventListener('htmx:afterSwap', function (e) {
    var t = e.detail && e.detail.target;
    if (!t || t.getAttribute('role') !== 'listbox') return;
    var p = pickerParts(t);
    if (!p) return;
    // Answers to an older query, or arriving after a pick, do not reopen the list.
    pickerOpen(p, doc.activeElement === p.input && !p.value.value && t.children.length > 0);
  });

  doc.addEventListener('input', function (e) {
    if (!e.target.matches || !e.target.matches('[data-picker] [role="combobox"]')) return;
    var p = pickerParts(e.target);
    p.value.value = '';
    p.root.classList.remove('is-picked');
    if (!e.target.value) pickerChanged(p);
  });

  doc.addEventListener('keydown', function (e) {
    if (!e.target.matches || !e.target.matches('[data-picker] [role="combobox"]')) return;
    var p = pickerParts(e.target);
    var options = pickerOptions(p);
    var current = doc.getElementById(p.input.getAttribute('aria-activedescendant') || '');
    var i = options.indexOf(current);
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      if (!options.length) return;
      e.preventDefault();
      pickerOpen(p, true);
      var next = e.key === 'ArrowDown' ? (i + 1) % options.length : (i <= 0 ? options.length - 1 : i - 1);
      pickerActivate(p, options[next]);
    } else if (e.key === 'Enter' && !p.list.hidden && current) {
      e.preventDefault();  // pick, do not submit the form yet
      pickerChoose(p, current);
    } else if (e.key === 'Escape' && !p.list.hidden) {
      e.preventDefault();
      e.stopPropagation();
      pickerOpen(p, false);
    }
  });

  doc.addEventListener('mousedown', function (e) {
    var option = closest(e.target, '[data-picker] [role="option"]');
    if (!option || option.getAttribute('aria-disabled') === 'true') return;
    e.preventDefault();  // keep the focus in the text box
    pickerChoose(pickerParts(option), option);
  });

  doc.addEventListener('focusout', function (e) {
    if (!e.target.matches || !e.target.matches('[data-picker] [role="combobox"]')) return;
    var p = pickerParts(e.target);
    setTimeout(function () { if (doc.activeElement !== p.input) pickerOpen(p, false); }, 0);
  });

  /* ------------------------------------------------------------------ */
  /* Flash messages                                                      */
  /* ------------------------------------------------------------------ */
  doc.addEventListener('click', function (e) {
    var btn = closest(e.target, '.flash__close');
    if (!btn) return;
    if (closest(btn, '#htmx-error')) { clearError(); return; }
    var flash = closest(btn, '.flash');
    if (!flash) return;
    var list = flash.parentElement;
    flash.remove();
    if (list && list.classList.contains('flash-list') && !list.querySelector('.flash')) {
      list.remove();
    }
  });

  /* ------------------------------------------------------------------ */
  /* Confirmations: [data-confirm] on forms, buttons and links           */
  /* Capture phase, so a refusal also stops htmx's own listeners.        */
  /* ------------------------------------------------------------------ */
  function refuse(e) {
    e.preventDefault();
    e.stopImmediatePropagation();
  }

  doc.addEventListener('click', function (e) {
    var el = closest(e.target, '[data-confirm]:not(form)');
    if (!el || el.disabled || el.getAttribute('aria-disabled') === 'true') return;
    if (!window.confirm(el.getAttribute('data-confirm'))) refuse(e);
  }, true);

  doc.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form || !form.matches || !form.matches('form[data-confirm]')) return;
    // A submit button with its own data-confirm has already asked.
    if (e.submitter && e.submitter.hasAttribute('data-confirm')) return;
    if (!window.confirm(form.getAttribute('data-confirm'))) refuse(e);
  }, true);

  /* ------------------------------------------------------------------ */
  /* Auto-submit selects (pages without htmx driving the form)           */
  /* ------------------------------------------------------------------ */
  var HTMX_DRIVEN = '[hx-get],[hx-post],[hx-put],[hx-patch],[hx-delete],[hx-trigger],' +
    '[data-hx-get],[data-hx-post],[data-hx-put],[data-hx-patch],[data-hx-delete],[data-hx-trigger]';

  doc.addEventListener('change', function (e) {
    var sel = e.target;
    if (!sel.matches || !sel.matches('select[data-autosubmit]')) return;
    var form = sel.form;
    if (!form) return;
    if (window.htmx && (sel.closest(HTMX_DRIVEN) || form.matches(HTMX_DRIVEN))) return;
    if (typeof form.requestSubmit === 'function') form.requestSubmit();
    else form.submit();
  });

  /* ------------------------------------------------------------------ */
  /* "Select all" checkboxes + selected count                            */
  /* ------------------------------------------------------------------ */
  function scopeOf(input) { return input.form || input.closest('form') || doc; }

  function boxesNamed(scope, name) {
    var all = scope === doc
      ? doc.querySelectorAll('input[type="checkbox"]')
      : scope.elements;
    return Array.prototype.filter.call(all, function (el) {
      return el.type === 'checkbox' && el.name === name && !el.hasAttribute('data-select-all');
    });
  }

  function masterIn(scope) {
    if (scope !== doc) {
      return Array.prototype.filter.call(scope.elements, function (el) {
        return el.type === 'checkbox' && el.hasAttribute('data-select-all');
      });
    }
    return Array.prototype.slice.call(doc.querySelectorAll('input[type="checkbox"][data-select-all]'));
  }

  function refreshSelection(scope) {
    var total = 0;
    masterIn(scope).forEach(function (master) {
      var boxes = boxesNamed(scope, master.getAttribute('data-select-all'));
      var enabled = boxes.filter(function (b) { return !b.disabled; });
      var checked = boxes.filter(function (b) { return b.checked; }).length;
      var enabledChecked = enabled.filter(function (b) { return b.checked; }).length;
      master.checked = enabled.length > 0 && enabledChecked === enabled.length;
      master.indeterminate = enabledChecked > 0 && enabledChecked < enabled.length;
      total += checked;
    });
    var root = scope === doc ? doc : scope;
    root.querySelectorAll('[data-selected-count]').forEach(function (el) {
      el.textContent = String(total);
    });
  }

  doc.addEventListener('change', function (e) {
    var t = e.target;
    if (!t.matches || !t.matches('input[type="checkbox"]')) return;
    var scope = scopeOf(t);
    if (t.hasAttribute('data-select-all')) {
      boxesNamed(scope, t.getAttribute('data-select-all')).forEach(function (b) {
        if (!b.disabled) b.checked = t.checked;
      });
      refreshSelection(scope);
    } else if (t.name && masterIn(scope).length) {
      refreshSelection(scope);
    }
  });

  doc.addEventListener('reset', function (e) {
    var form = e.target;
    if (!form || !form.querySelectorAll) return;
    setTimeout(function () {
      refreshSelection(form);
      form.querySelectorAll('.perm-grid .is-changed').forEach(function (c) {
        c.classList.remove('is-changed');
      });
    }, 0);
  });

  /* ------------------------------------------------------------------ */
  /* Permission grid: highlight cells that differ from the saved state   */
  /* ------------------------------------------------------------------ */
  doc.addEventListener('change', function (e) {
    var t = e.target;
    if (!t.matches || !t.matches('.perm-grid input[type="checkbox"]')) return;
    var cell = t.closest('td, th');
    if (cell) cell.classList.toggle('is-changed', t.checked !== t.defaultChecked);
  });

  /* ------------------------------------------------------------------ */
  /* Dropdowns (<details class="dropdown">)                              */
  /* ------------------------------------------------------------------ */
  function openDropdowns() {
    return Array.prototype.slice.call(doc.querySelectorAll('details.dropdown[open]'));
  }

  function closeDropdown(d, focusSummary) {
    d.open = false;
    if (focusSummary) {
      var summary = d.querySelector(':scope > summary');
      if (summary) summary.focus();
    }
  }

  function visibleItems(menu) {
    return Array.prototype.filter.call(
      menu.querySelectorAll('.dropdown__item, .dropdown__search'),
      function (el) { return !el.disabled && el.getClientRects().length > 0; });
  }

  doc.addEventListener('click', function (e) {
    openDropdowns().forEach(function (d) {
      if (!d.contains(e.target)) closeDropdown(d, false);
    });
    // Choosing an item closes its menu (after the click has done its job).
    var item = closest(e.target, 'details.dropdown .dropdown__item');
    if (item && !e.defaultPrevented) {
      var d = item.closest('details.dropdown');
      setTimeout(function () { d.open = false; }, 0);
    }
  });

  // Opening one dropdown closes the others; focus the search box if any.
  doc.addEventListener('toggle', function (e) {
    var d = e.target;
    if (!d.matches || !d.matches('details.dropdown') || !d.open) return;
    openDropdowns().forEach(function (other) { if (other !== d) other.open = false; });
    var search = d.querySelector('.dropdown__search');
    if (search && window.matchMedia && window.matchMedia('(pointer: fine)').matches) {
      search.focus();
    }
  }, true);

  // A menu whose content arrives by htmx (org switcher): focus its search
  // box once loaded, if the user is still on the toggle.
  doc.addEventListener('htmx:afterSettle', function (e) {
    var target = e.detail && e.detail.target;
    var d = target && target.isConnected && target.closest && target.closest('details.dropdown[open]');
    if (!d) return;
    var search = d.querySelector('.dropdown__search');
    var active = doc.activeElement;
    if (search && (!active || active === doc.body || d.contains(active)) &&
        window.matchMedia && window.matchMedia('(pointer: fine)').matches) {
      search.focus();
    }
  });

  doc.addEventListener('keydown', function (e) {
    var open = openDropdowns();
    if (!open.length) return;

    if (e.key === 'Escape') {
      var active = doc.activeElement;
      var owner = open.filter(function (d) { return d.contains(active); })[0] || open[0];
      open.forEach(function (d) { closeDropdown(d, d === owner); });
      e.preventDefault();
      return;
    }

    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      var current = doc.activeElement;
      var dd = closest(current, 'details.dropdown[open]');
      if (!dd) return;
      var menu = dd.querySelector('.dropdown__menu');
      if (!menu) return;
      var items = visibleItems(menu);
      if (!items.length) return;
      var idx = items.indexOf(current);
      var next = e.key === 'ArrowDown'
        ? items[(idx + 1) % items.length]
        : items[(idx - 1 + items.length) % items.length];
      next.focus();
      e.preventDefault();
    }
  });

  /* ------------------------------------------------------------------ */
  /* Client-side list filter: <input data-filter-list="#list-id">        */
  /* ------------------------------------------------------------------ */
  function filterItems(list) {
    var marked = list.querySelectorAll('[data-filter-item]');
    if (marked.length) return Array.prototype.slice.call(marked);
    return Array.prototype.slice.call(list.querySelectorAll(':scope > li'));
  }

  function applyFilter(input) {
    var list;
    try { list = doc.querySelector(input.getAttribute('data-filter-list')); } catch (err) { return; }
    if (!list) return;
    var q = input.value.trim().toLowerCase();
    filterItems(list).forEach(function (item) {
      item.hidden = q !== '' && item.textContent.toLowerCase().indexOf(q) === -1;
    });
  }

  doc.addEventListener('input', function (e) {
    var input = e.target;
    if (input.matches && input.matches('[data-filter-list]')) applyFilter(input);
  });

  // Enter in a dropdown's filter box picks the first visible match.
  doc.addEventListener('keydown', function (e) {
    var input = e.target;
    if (e.key !== 'Enter' || !input.matches || !input.matches('.dropdown [data-filter-list]')) return;
    e.preventDefault();
    var list;
    try { list = doc.querySelector(input.getAttribute('data-filter-list')); } catch (err) { return; }
    if (!list) return;
    var first = filterItems(list).filter(function (i) { return !i.hidden; })[0];
    var target = first && (first.matches('a, button') ? first : first.querySelector('a, button'));
    if (target) target.click();
  });

  /* ------------------------------------------------------------------ */
  /* Copy buttons: <button data-copy="#field" hidden> next to a secret     */
  /* shown once. Hidden without JavaScript (the field stays selectable);  */
  /* shown by init() where the Clipboard API exists.                      */
  /* ------------------------------------------------------------------ */
  doc.addEventListener('click', function (e) {
    var button = closest(e.target, 'button[data-copy]');
    if (!button) return;
    var field = doc.querySelector(button.getAttribute('data-copy'));
    if (!field || !navigator.clipboard) return;
    var label = button.getAttribute('data-copied') || 'Copied';
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = label;
      button.setAttribute('data-state', 'copied');
    }, function () {
      field.select(); // the person copies it themselves
    });
  });

  /* Charts are drawn by static/js/charts.js (loaded only on pages with charts). */

  /* ------------------------------------------------------------------ */
  /* Initialisation (page load and every htmx swap)                      */
  /* ------------------------------------------------------------------ */
  function init(root) {
    root = root || doc;
    var box = errorBox();
    if (box) {
      if (!box.getAttribute('role')) box.setAttribute('role', 'alert');
      if (!box.textContent.trim()) { box.textContent = ''; box.hidden = true; }
    }
    // Counts may live outside a swapped fragment, so always refresh every scope.
    var scopes = [];
    var masters = doc.querySelectorAll('input[type="checkbox"][data-select-all]');
    Array.prototype.forEach.call(masters, function (m) {
      var s = scopeOf(m);
      if (scopes.indexOf(s) === -1) scopes.push(s);
    });
    scopes.forEach(refreshSelection);
    (root.querySelectorAll ? root : doc).querySelectorAll('[data-filter-list]').forEach(function (input) {
      if (input.value) applyFilter(input);
    });
    if (navigator.clipboard && window.isSecureContext) {
      (root.querySelectorAll ? root : doc).querySelectorAll('button[data-copy][hidden]').forEach(function (b) {
        b.hidden = false;
      });
    }
  }

  onReady(function () { init(doc); });
  doc.addEventListener('htmx:load', function (e) {
    var elt = e.detail && e.detail.elt;
    if (elt && elt !== doc.body) init(elt);
  });
  /* ------------------------------------------------------------------ */
  /* Compliance reports: the CSV buttons post the period typed in the    */
  /* period form (their hidden copies follow it; without JavaScript they */
  /* carry the period the page was opened with, shown in the fields).    */
  /* ------------------------------------------------------------------ */
  doc.addEventListener('input', function (e) {
    var field = e.target;
    if (!field.form || field.form.id !== 'report-period' || !field.name) return;
    doc.querySelectorAll('[data-period-field="' + field.name + '"]').forEach(function (copy) {
      copy.value = field.value;
    });
  });
})();
