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

// Image Type follows the environment: only its types are offered, its default preselected.
function followEnvironment(environment, preselect) {
  const target = document.querySelector(environment.dataset.typeSelect);
  if (!target) return;
  const allowed = JSON.parse(environment.dataset.types)[environment.value] || [];
  const preferred = JSON.parse(environment.dataset.defaultTypes)[environment.value];
  for (const option of target.options) {
    option.disabled = !allowed.includes(option.value);
    option.hidden = option.disabled;
  }
  if (preselect || !allowed.includes(target.value)) target.value = preferred;
}
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-types]")) followEnvironment(event.target, true);
});
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("select[data-types]").forEach((s) => followEnvironment(s, false));
});
