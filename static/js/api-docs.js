/* The API reference page: the vendored Swagger UI draws /api/v1/openapi.json
 * into #api-viewer, then the server-rendered reference (the page as it is
 * without JavaScript, or when the bundle failed to load) is hidden.
 *
 * Under the strict Content-Security-Policy (script-src 'self'; style-src
 * 'self'): this file is the only script the page adds, the stylesheet is a
 * static file, and Swagger UI's React styles elements through the CSSOM,
 * which the policy allows (tests/e2e/test_api_docs.py fails on any
 * securitypolicyviolation). "Try it out" is off: the page is public and a
 * key typed into it would be one more place a secret could leak from. */
(function () {
  "use strict";

  function start() {
    var viewer = document.getElementById("api-viewer");
    if (!viewer || typeof window.SwaggerUIBundle !== "function") {
      return; // no viewer: the server-rendered reference stays
    }
    viewer.hidden = false;
    watch(viewer);
    window.SwaggerUIBundle({
      url: viewer.getAttribute("data-spec-url"),
      domNode: viewer,
      deepLinking: false,
      docExpansion: "list",
      defaultModelsExpandDepth: 0,
      supportedSubmitMethods: [],
      validatorUrl: null,
      onComplete: function () {
        var fallback = document.getElementById("api-reference-static");
        if (fallback) {
          fallback.hidden = true;
        }
        viewer.setAttribute("data-ready", "true");
      },
    });
  }

  /* Swagger UI draws two things assistive technology cannot name: the
   * parameters' <select>s have no label, and the responses table's header
   * row is made of <td>s. Named here as they appear (an operation opens
   * later than the page loads), without changing what React owns. */
  function nameControls(root) {
    root.querySelectorAll("tr[data-param-name] select:not([aria-label])").forEach(function (select) {
      var row = select.closest("tr[data-param-name]");
      select.setAttribute("aria-label", row.getAttribute("data-param-name"));
    });
    root.querySelectorAll(".responses-table .responses-header td:not([role])").forEach(function (cell) {
      cell.setAttribute("role", "columnheader");
    });
  }

  function watch(viewer) {
    nameControls(viewer);
    new MutationObserver(function () {
      nameControls(viewer);
    }).observe(viewer, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
