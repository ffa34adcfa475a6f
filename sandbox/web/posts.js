// One post as the web app shows it: author, time, Markdown message, message attachments with colour
// bars, fields and buttons/menus, "(edited)", and the "(Only visible to you)" mark of ephemeral posts.

import { avatarColor, h, safeColor, timeOf } from "./dom.js";
import { renderInline, renderMarkdown } from "./markdown.js";

const BUTTON_STYLES = new Set(["default", "primary", "success", "good", "warning", "danger"]);

/**
 * view: { me, user(id) -> user|undefined, onAction(post, action, selected) -> Promise }
 */
export function renderPost(post, view) {
  const ephemeral = post.type === "system_ephemeral";
  const system = post.type.startsWith("system_") && !ephemeral;
  const md = { username: view.me.username };
  if (system) {
    return h("div", { class: "post post-system", dataset: { postId: post.id } },
      h("div", { class: "post-body markdown", html: renderMarkdown(post.message, md) }));
  }
  const author = view.user(post.user_id);
  const props = post.props || {};
  const name = (props.from_webhook === "true" && props.override_username) || author?.username || "someone";
  const isBot = Boolean(author?.is_bot) || props.from_bot === "true";
  const classes = ["post"];
  if (ephemeral) classes.push("post-ephemeral");
  if (post.delete_at) classes.push("post-deleted");
  const body = post.delete_at
    ? h("div", { class: "post-body post-deleted-note", text: "(message deleted)" })
    : h("div", { class: "post-body markdown", html: renderMarkdown(post.message, md) });
  return h("div", { class: classes.join(" "), dataset: { postId: post.id, userId: post.user_id } },
    h("div", { class: "avatar", "aria-hidden": "true", text: name.slice(0, 1).toUpperCase(),
               dataset: { color: "" } }),
    h("div", { class: "post-main" },
      h("div", { class: "post-head" },
        h("span", { class: "post-author", text: name }),
        isBot ? h("span", { class: "badge", text: "BOT" }) : null,
        h("time", { class: "post-time", datetime: new Date(post.create_at).toISOString(),
                    text: timeOf(post.create_at) }),
        post.edit_at && !post.delete_at ? h("span", { class: "post-edited", text: "(edited)" }) : null),
      body,
      post.delete_at ? null : renderAttachments(post, props.attachments, view),
      ephemeral ? h("div", { class: "ephemeral-note", text: "(Only visible to you)" }) : null));
}

/** The avatar colour is set through the CSSOM: the page's CSP forbids style attributes. */
export function paintPost(el) {
  const avatar = el.querySelector(".avatar");
  if (avatar) avatar.style.backgroundColor = avatarColor(el.dataset.userId || "");
  for (const bar of el.querySelectorAll("[data-bar-color]")) bar.style.backgroundColor = bar.dataset.barColor;
  for (const btn of el.querySelectorAll("[data-custom-color]")) {
    btn.style.color = btn.dataset.customColor;
    btn.style.borderColor = btn.dataset.customColor;
  }
  return el;
}

function renderAttachments(post, attachments, view) {
  if (!Array.isArray(attachments) || !attachments.length) return null;
  const md = { username: view.me.username };
  return h("div", { class: "attachments" }, attachments.filter((a) => a && typeof a === "object").map((a) => {
    const color = safeColor(a.color) || "#dddddd";
    const title = a.title ? (a.title_link && /^https?:\/\//i.test(a.title_link)
      ? h("a", { class: "attachment-title", href: a.title_link, target: "_blank", rel: "noopener noreferrer",
                 html: renderInline(a.title, md) })
      : h("div", { class: "attachment-title", html: renderInline(a.title, md) })) : null;
    const fields = Array.isArray(a.fields) && a.fields.length ? h("div", { class: "attachment-fields" },
      a.fields.filter((f) => f && typeof f === "object").map((f) => {
        const short = f.short === true || f.short === "true";
        return h("div", { class: short ? "field field-short" : "field" },
          f.title ? h("div", { class: "field-title", html: renderInline(f.title, md) }) : null,
          h("div", { class: "field-value markdown", html: renderMarkdown(String(f.value ?? ""), md) }));
      })) : null;
    const actions = Array.isArray(a.actions) && a.actions.length
      ? h("div", { class: "attachment-actions" }, a.actions.map((action) => renderAction(post, action, view)))
      : null;
    const error = h("div", { class: "action-error", role: "alert" });
    return h("div", { class: "attachment-wrap" },
      a.pretext ? h("div", { class: "attachment-pretext markdown", html: renderMarkdown(a.pretext, md) }) : null,
      h("div", { class: "attachment" },
        h("div", { class: "attachment-bar", dataset: { barColor: color } }),
        h("div", { class: "attachment-body" },
          a.author_name ? h("div", { class: "attachment-author", text: a.author_name }) : null,
          title,
          a.text ? h("div", { class: "attachment-text markdown", html: renderMarkdown(a.text, md) }) : null,
          fields,
          a.image_url ? h("a", { class: "attachment-image-link", href: safeHttp(a.image_url), target: "_blank",
                                 rel: "noopener noreferrer", text: "image" }) : null,
          actions,
          error,
          a.footer ? h("div", { class: "attachment-footer", text: a.footer }) : null)));
  }));
}

function safeHttp(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : "#";
}

function renderAction(post, action, view) {
  const run = async (control, selected) => {
    const wrap = control.closest(".attachment-body");
    const error = wrap?.querySelector(".action-error");
    if (error) error.textContent = "";
    control.disabled = true;
    try {
      await view.onAction(post, action, selected);
    } catch (err) {
      if (error) error.textContent = err.message || "The action failed.";
    } finally {
      control.disabled = Boolean(action.disabled);
    }
  };
  if (action.type === "select") {
    const options = Array.isArray(action.options) ? action.options : [];
    const select = h("select", { class: "action-select", "aria-label": action.name || "Select",
                                 disabled: Boolean(action.disabled) },
      h("option", { value: "", text: action.name || "Select an option" }),
      options.map((o) => h("option", { value: o.value, text: o.text, selected: o.value === action.default_option })));
    select.addEventListener("change", () => {
      if (select.value) run(select, select.value);
    });
    return select;
  }
  const style = BUTTON_STYLES.has(action.style) ? action.style : "default";
  const custom = safeColor(action.style);
  const button = h("button", {
    type: "button", class: `action-button action-${style}`, disabled: Boolean(action.disabled),
    dataset: custom && !BUTTON_STYLES.has(action.style) ? { customColor: custom, actionId: action.id }
      : { actionId: action.id },
    text: action.name || action.id,
  });
  button.addEventListener("click", () => run(button, undefined));
  return button;
}
