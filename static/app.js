// authserver's only script, loaded on every page (the CSP allows no inline script).
//
// Copy buttons: <button type="button" class="button copy-button" data-copy-target="ID" hidden>Copy</button>
// copies the text of the element with id ID (the value of an input or textarea) and says
// "Copied" for a moment. Buttons stay hidden without JavaScript, so nothing is shown that cannot work.
//
// Dashboard navigation: on a phone it is one scrolling row; the current page's entry is scrolled
// into view.
"use strict";

(function () {
  const COPIED_FOR_MS = 2000;

  function textOf(element) {
    return "value" in element && typeof element.value === "string" ? element.value : element.textContent.trim();
  }

  function copyWithSelection(element) {
    // For browsers without the asynchronous Clipboard API (or outside a secure context).
    const selection = window.getSelection();
    const range = document.createRange();
    range.selectNodeContents(element);
    selection.removeAllRanges();
    selection.addRange(range);
    const copied = document.execCommand("copy");
    selection.removeAllRanges();
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(element) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(textOf(element));
    }
    return copyWithSelection(element);
  }

  function announce(button, message) {
    const label = button.dataset.copyLabel || button.textContent;
    button.dataset.copyLabel = label;
    button.textContent = message;
    window.clearTimeout(Number(button.dataset.copyTimer));
    button.dataset.copyTimer = String(window.setTimeout(function () {
      button.textContent = label;
    }, COPIED_FOR_MS));
  }

  function setUpCopyButton(button) {
    const target = document.getElementById(button.dataset.copyTarget);
    if (!target) {
      return;
    }
    button.setAttribute("aria-live", "polite");
    button.hidden = false;
    button.addEventListener("click", function () {
      copy(target).then(
        function () { announce(button, "Copied"); },
        function () { announce(button, "Press Ctrl+C to copy"); }
      );
    });
  }

  function revealCurrentNavEntry() {
    const current = document.querySelector(".sidenav a[aria-current='page']");
    if (current) {
      current.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-copy-target]").forEach(setUpCopyButton);
    revealCurrentNavEntry();
  });
})();
