/*
 * Tenantry — draws every chart (app/web/charts.py, templates/components/_chart.html).
 *
 * A chart is a `.chart[data-chart=ID]` box and a
 * `<script type="application/json" id=ID>` holding a Plotly figure built on
 * the server, inside a `<template>` beside the box (htmx, configured with
 * allowScriptTags: false, drops every <script> of swapped content except
 * those in a template's inert content). This one static file draws them with the vendored plotly.js,
 * on page load and whenever htmx swaps content in (`htmx:load`), so the
 * strict CSP (`script-src 'self'`, no inline script, no eval) holds.
 */
(function () {
  'use strict';

  var CONFIG = { displayModeBar: false, responsive: true, displaylogo: false };

  function draw(box) {
    if (!window.Plotly || box.getAttribute('data-drawn') === '1') return;
    var id = box.getAttribute('data-chart');
    var source = null;
    var templates = box.parentNode ? box.parentNode.querySelectorAll('template.chart__data') : [];
    for (var i = 0; i < templates.length && !source; i++) {
      source = templates[i].content.getElementById(id);
    }
    if (!source) source = document.getElementById(id);
    if (!source) return;
    var figure;
    try {
      figure = JSON.parse(source.textContent);
    } catch (e) {
      box.textContent = 'This chart could not be read.';
      return;
    }
    box.setAttribute('data-drawn', '1');
    window.Plotly.newPlot(box, figure.data || [], figure.layout || {}, CONFIG).then(function () {
      box.setAttribute('data-drawn', 'done');
    });
  }

  function drawAll(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var boxes = scope.querySelectorAll('.chart[data-chart]');
    for (var i = 0; i < boxes.length; i++) draw(boxes[i]);
    if (scope !== document && scope.matches && scope.matches('.chart[data-chart]')) draw(scope);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { drawAll(document); });
  } else {
    drawAll(document);
  }
  // htmx fires htmx:load on every element it swaps in.
  document.addEventListener('htmx:load', function (evt) { drawAll(evt.target); });
})();
