// Small progressive enhancements; every page works without this file.
document.addEventListener("click", (event) => {
  // A button with data-confirm asks before it submits (destructive actions).
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
document.addEventListener("change", (event) => {
  // "select all" checkbox for tables with row checkboxes.
  const all = event.target.closest("[data-select-all]");
  if (!all) return;
  document.querySelectorAll(all.dataset.selectAll).forEach((box) => { box.checked = all.checked; });
});
