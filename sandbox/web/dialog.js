// Interactive dialogs from the `open_dialog` event: text, textarea, select, bool and radio elements,
// checked like the web app checks them (required, min length, number/email/url subtypes, known option),
// submitted through POST /actions/dialogs/submit. The integration's answer may carry `errors`
// {element name: message}, shown under that element, and `error`, shown above the buttons; either keeps
// the dialog open. Cancelling with notify_on_cancel set submits {"cancelled": true}.

import { h } from "./dom.js";
import { renderInline, renderMarkdown } from "./markdown.js";

const REQUIRED = "This field is required.";

function initialValue(el) {
  if (el.type === "bool") return el.default === "true" || el.default === true;
  return el.default ?? "";
}

function check(el, value) {
  const empty = value === "" || value === null || value === undefined;
  if (el.type === "bool") return el.optional || value ? "" : REQUIRED;
  if (empty) return el.optional ? "" : REQUIRED;
  if (el.type === "text" || el.type === "textarea") {
    if (el.min_length && String(value).length < el.min_length) return `Minimum input length is ${el.min_length}.`;
    if (el.subtype === "number" && !/^-?\d+(\.\d+)?$/.test(String(value).trim())) return "Must be a number.";
    if (el.subtype === "email" && !/^[^\s@]+@[^\s@]+$/.test(value)) return "Must be a valid email address.";
    if (el.subtype === "url" && !/^https?:\/\//i.test(value)) return "URL must include http:// or https://.";
  }
  if ((el.type === "select" || el.type === "radio") && !el.data_source) {
    const values = (el.options || []).map((o) => o.value);
    if (!values.includes(value)) return "Selected option is invalid.";
  }
  return "";
}

function submittedValue(el, value) {
  if (el.type === "bool") return Boolean(value);
  if ((el.type === "text" || el.type === "textarea") && el.subtype === "number" && value !== "") return Number(value);
  if ((el.type === "select" || el.type === "radio") && value === "") return null;
  return value;
}

function field(el, index, md, choices) {
  const id = `dialog-el-${index}`;
  const label = h("label", { class: "dialog-label", for: id },
    el.display_name || el.name, el.optional ? h("span", { class: "optional", text: " (optional)" }) : null);
  let control;
  let read;
  const initial = initialValue(el);
  if (el.type === "textarea") {
    control = h("textarea", { id, name: el.name, rows: 4, placeholder: el.placeholder || "",
                              maxlength: el.max_length || 3000 });
    control.value = initial;
    read = () => control.value;
  } else if (el.type === "select") {
    const options = el.data_source ? choices(el.data_source) : (el.options || []);
    control = h("select", { id, name: el.name },
      h("option", { value: "", text: el.placeholder || "Select an option..." }),
      options.map((o) => h("option", { value: o.value, text: o.text })));
    control.value = initial;
    read = () => control.value;
  } else if (el.type === "bool") {
    const box = h("input", { id, type: "checkbox", name: el.name, checked: Boolean(initial) });
    control = h("label", { class: "dialog-bool" }, box, " ", el.placeholder || "");
    read = () => box.checked;
  } else if (el.type === "radio") {
    control = h("div", { class: "dialog-radio", role: "radiogroup", id, "aria-label": el.display_name },
      (el.options || []).map((o, n) => h("label", { class: "dialog-radio-option" },
        h("input", { type: "radio", name: el.name, value: o.value, checked: o.value === initial,
                     id: n === 0 ? `${id}-0` : undefined }),
        " ", o.text)));
    read = () => control.querySelector("input:checked")?.value ?? "";
  } else {
    const types = { email: "email", number: "number", tel: "tel", url: "url", password: "password" };
    control = h("input", { id, name: el.name, type: types[el.subtype] || "text", placeholder: el.placeholder || "",
                           maxlength: el.max_length || 150 });
    control.value = initial;
    read = () => control.value;
  }
  const help = el.help_text ? h("div", { class: "dialog-help", html: renderInline(el.help_text, md) }) : null;
  const error = h("div", { class: "dialog-error", role: "alert", dataset: { for: el.name } });
  const wrap = h("div", { class: "dialog-field", dataset: { name: el.name } }, label, control, help, error);
  return { el, wrap, read, error, focus: () => (control.querySelector?.("input") || control).focus() };
}

/**
 * request: the decoded `open_dialog` payload {trigger_id, url, dialog}.
 * submit(body) posts to /actions/dialogs/submit and resolves to the integration's answer.
 * choices(data_source) lists {text, value} for users/channels selects.
 */
export function showDialog(request, { me, submit, choices }) {
  const dialog = request.dialog || {};
  const md = { username: me.username };
  const elements = Array.isArray(dialog.elements) ? dialog.elements : [];
  const fields = elements.map((el, i) => field(el, i, md, choices));
  const general = h("div", { class: "dialog-general-error", role: "alert" });
  const submitButton = h("button", { type: "submit", class: "btn btn-primary", text: dialog.submit_label || "Submit" });
  const cancelButton = h("button", { type: "button", class: "btn", text: "Cancel" });
  const closeButton = h("button", { type: "button", class: "dialog-close", "aria-label": "Close", text: "\u00d7" });
  const form = h("form", { class: "dialog", novalidate: true, role: "dialog", "aria-modal": "true",
                           "aria-labelledby": "dialog-title" },
    h("div", { class: "dialog-header" }, h("h2", { id: "dialog-title", text: dialog.title || "" }), closeButton),
    h("div", { class: "dialog-body" },
      dialog.introduction_text ? h("div", { class: "dialog-intro markdown",
                                            html: renderMarkdown(dialog.introduction_text, md) }) : null,
      fields.map((f) => f.wrap)),
    h("div", { class: "dialog-footer" }, general, cancelButton, submitButton));
  const backdrop = h("div", { class: "dialog-backdrop" }, form);

  const base = () => ({ url: request.url, callback_id: dialog.callback_id || "", state: dialog.state || "" });
  let closed = false;
  const close = () => {
    closed = true;
    backdrop.remove();
    document.removeEventListener("keydown", onKey);
  };
  const cancel = () => {
    if (closed) return;
    close();
    if (dialog.notify_on_cancel) {
      // Whatever the integration answers to a cancel is ignored, as in the web app.
      submit({ ...base(), cancelled: true, submission: {} }).catch(() => {});
    }
  };
  const onKey = (e) => {
    if (e.key === "Escape") cancel();
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    general.textContent = "";
    let firstBad = null;
    const submission = {};
    for (const f of fields) {
      const value = f.read();
      const problem = check(f.el, value);
      f.error.textContent = problem;
      f.wrap.classList.toggle("has-error", Boolean(problem));
      if (problem && !firstBad) firstBad = f;
      submission[f.el.name] = submittedValue(f.el, value);
    }
    if (firstBad) {
      firstBad.focus();
      return;
    }
    submitButton.disabled = true;
    try {
      const answer = (await submit({ ...base(), cancelled: false, submission })) || {};
      const errors = answer.errors && typeof answer.errors === "object" ? answer.errors : {};
      let shown = false;
      for (const f of fields) {
        const message = typeof errors[f.el.name] === "string" ? errors[f.el.name] : "";
        f.error.textContent = message;
        f.wrap.classList.toggle("has-error", Boolean(message));
        shown = shown || Boolean(message);
      }
      // Errors for names the dialog has no element for still need to be seen somewhere.
      const known = new Set(fields.map((f) => f.el.name));
      const stray = Object.entries(errors).filter(([name, m]) => !known.has(name) && typeof m === "string");
      const messages = [answer.error, ...stray.map(([, m]) => m)].filter(Boolean);
      general.textContent = messages.join(" ");
      shown = shown || messages.length > 0;
      if (!shown) close();
    } catch (err) {
      general.textContent = err.message || "The dialog could not be submitted.";
    } finally {
      submitButton.disabled = false;
    }
  });
  cancelButton.addEventListener("click", cancel);
  closeButton.addEventListener("click", cancel);
  document.addEventListener("keydown", onKey);
  document.body.append(backdrop);
  (fields[0]?.focus || (() => submitButton.focus()))();
  return { close, cancel };
}
