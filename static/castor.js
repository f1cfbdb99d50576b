// Small progressive enhancements; every page works without this file.
document.addEventListener("click", (event) => {
  // A button with data-confirm asks before it submits (destructive actions).
  const button = event.target.closest("[data-confirm]");
  if (!button) return;
  const needed = button.dataset.requiresSelection;
  if (needed && !document.querySelector(`${needed}:checked:not(:disabled)`)) {
    event.preventDefault();
    event.stopImmediatePropagation();
    showError("Nothing is selected: tick the images to delete first.");
    return;
  }
  if (!window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
    return;
  }
  // Confirmed here: the server skips its own confirmation page (shown without JavaScript).
  const form = button.form;
  if (form && !form.querySelector("input[name=confirmed]")) {
    const flag = document.createElement("input");
    flag.type = "hidden";
    flag.name = "confirmed";
    flag.value = "1";
    form.append(flag);
  }
}, true);
document.addEventListener("change", (event) => {
  // "select all" checkbox for tables with row checkboxes (a disabled row, e.g. a protected
  // image, stays unticked: it can't be part of the selection).
  const all = event.target.closest("[data-select-all]");
  if (!all) return;
  document.querySelectorAll(all.dataset.selectAll).forEach((box) => {
    if (!box.disabled) box.checked = all.checked;
  });
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

// A failed htmx request always says so: the server's message (error fragments and pages
// carry one in .flash-error) or the status, in the page's message area.
function showError(text) {
  let box = document.getElementById("flashes");
  if (!box) {
    box = document.createElement("div");
    box.id = "flashes";
    document.querySelector("main").prepend(box);
  }
  let line = box.querySelector("[data-request-error]");
  if (!line) {
    line = document.createElement("p");
    line.className = "flash flash-error";
    line.setAttribute("role", "alert");
    line.dataset.requestError = "";
    box.append(line);
  }
  line.textContent = text;
}
function messageFrom(xhr) {
  const doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
  const found = doc.querySelector(".flash-error, .error-page p");
  if (found && found.textContent.trim()) return found.textContent.trim();
  return `The request failed (${xhr.status} ${xhr.statusText || "error"}). Nothing was saved; reload the page and try again.`;
}
document.addEventListener("htmx:responseError", (event) => showError(messageFrom(event.detail.xhr)));
document.addEventListener("htmx:sendError", () => {
  showError("The server could not be reached: check the network and try again.");
});
document.addEventListener("htmx:afterRequest", (event) => {
  // A form that went through clears the last failure's message (polls leave it alone).
  const line = document.querySelector("[data-request-error]");
  if (line && event.detail.successful && event.detail.elt.tagName === "FORM") line.remove();
});

// Forms that react: a switch enables its table, a choice shows its own fields, and the
// compression level follows the algorithm (its default, and its range shown).
document.addEventListener("change", (event) => {
  const input = event.target;
  document.querySelectorAll("fieldset[data-enabled-by]").forEach((set) => {
    if (input.matches(set.dataset.enabledBy)) set.disabled = !input.checked;
  });
  document.querySelectorAll("[data-shown-by]").forEach((box) => {
    if (input.matches(box.dataset.shownBy)) box.hidden = input.value !== box.dataset.shownValue;
  });
  if (input.matches("select[data-levels]")) {
    const [low, high, preset] = JSON.parse(input.dataset.levels)[input.value];
    const level = document.querySelector(input.dataset.levelInput);
    if (level) {
      level.min = low;
      level.max = high;
      level.value = preset;
    }
    const range = input.form && input.form.querySelector("[data-level-range]");
    if (range) range.textContent = high ? `Level ${low} to ${high}; default ${preset}.` : "No compression: level 0.";
  }
});
