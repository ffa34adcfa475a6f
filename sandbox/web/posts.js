// One post as the web app shows it: author, time, Markdown message, message attachments with colour
// bars, fields and buttons/menus, "(edited)", and the "(Only visible to you)" mark of ephemeral posts.
//
// Who a post is shown as follows the web app's PostUserProfile (components/post/user_profile.tsx):
// - from_webhook posts (integration replies): the author's name, or props.override_username when the
//   server allows overrides (ServiceSettings.EnablePostUsernameOverride), with a BOT tag;
// - system messages (ephemeral ones included) from a bot account: that bot;
// - other system messages: "System";
// - everything else: the author, with a BOT tag for bot accounts.
// "(Only visible to you)" sits in the header after the time (post_component.tsx `post__visibility`).
// Attachments follow message_attachment.tsx: pretext above the bordered box; author, title, then text,
// image, fields (short ones two to a row), footer and actions.

import { avatarColor, h, safeColor, timeOf } from "./dom.js";
import { renderInline, renderMarkdown } from "./markdown.js";

const BUTTON_STYLES = new Set(["default", "primary", "success", "good", "warning", "danger"]);
const FOOTER_MAX = 300; // Constants.MAX_ATTACHMENT_FOOTER_LENGTH

/** The name, avatar letter/colour key and BOT tag a post is shown with (see the header comment). */
export function authorOf(post, view) {
  const props = post.props || {};
  const author = view.user(post.user_id);
  const system = post.type.startsWith("system_");
  const isBot = Boolean(author?.is_bot);
  const username = author?.username || "someone";
  if (props.from_webhook === "true") {
    const override = view.config.EnablePostUsernameOverride === "true" && props.override_username;
    return { name: override || username, key: override ? `override:${override}` : post.user_id, bot: true,
             system: false };
  }
  if (system && isBot) return { name: username, key: post.user_id, bot: true, system: false };
  if (system) return { name: "System", key: "system", bot: false, system: true };
  return { name: username, key: post.user_id, bot: isBot || props.from_bot === "true", system: false };
}

/**
 * view: { me, config, user(id) -> user|undefined, channel(name) -> {display_name, team_name}|undefined,
 *         onAction(post, action, selected) -> Promise, onReplies(post)?, replyCount(post) -> int }
 */
export function renderPost(post, view) {
  const ephemeral = post.type === "system_ephemeral";
  const props = post.props || {};
  const md = markdownOptions(post, view);
  if (post.type.startsWith("system_") && !ephemeral) {
    return h("div", { class: "post post-system", dataset: { postId: post.id } },
      h("div", { class: "post-body markdown", html: renderMarkdown(post.message, md) }));
  }
  const who = authorOf(post, view);
  const classes = ["post"];
  if (ephemeral) classes.push("post-ephemeral");
  if (post.root_id) classes.push("post-reply");
  if (post.delete_at) classes.push("post-deleted");
  const body = post.delete_at
    ? h("div", { class: "post-body post-deleted-note", text: "(message deleted)" })
    : h("div", { class: "post-body markdown", html: renderMarkdown(post.message, md) });
  const replies = view.replyCount ? view.replyCount(post) : 0;
  return h("div", { class: classes.join(" "), dataset: { postId: post.id, userId: post.user_id,
                                                         rootId: post.root_id || undefined } },
    h("div", { class: `avatar${who.system ? " avatar-system" : ""}`, "aria-hidden": "true",
               text: who.name.slice(0, 1).toUpperCase(), dataset: { colorKey: who.key } }),
    h("div", { class: "post-main" },
      h("div", { class: "post-head" },
        h("span", { class: "post-author", text: who.name }),
        who.bot ? h("span", { class: "badge", text: "BOT" }) : null,
        h("time", { class: "post-time", datetime: new Date(post.create_at).toISOString(),
                    text: timeOf(post.create_at) }),
        ephemeral && !post.delete_at ? h("span", { class: "ephemeral-note", text: "(Only visible to you)" }) : null,
        post.edit_at && !post.delete_at ? h("span", { class: "post-edited", text: "(edited)" }) : null,
        // The hover menu's reply arrow (post_options.tsx): opens the post's thread, ephemeral answers included.
        view.onReplies && post.type !== "system_ephemeral" && !post.delete_at
          ? h("button", { type: "button", class: "post-reply-button", "aria-label": "Reply", text: "Reply",
                          onclick: () => view.onReplies(post) })
          : null),
      body,
      post.delete_at ? null : renderAttachments(post, props.attachments, view, md),
      replies && view.onReplies ? h("button", {
        type: "button", class: "thread-footer", text: replies === 1 ? "1 reply" : `${replies} replies`,
        onclick: () => view.onReplies(post) }) : null));
}

function markdownOptions(post, view) {
  // The server names the public channels a message mentions (props.channel_mentions); the viewer's
  // own channels of the team are known too (selectors makeGetChannelNamesMap: the two merged).
  const mentioned = (post.props && post.props.channel_mentions) || {};
  return {
    username: view.me.username,
    channel: (name) => view.channel(name) || (Object.prototype.hasOwnProperty.call(mentioned, name)
      && typeof mentioned[name] === "object" ? mentioned[name] : undefined),
  };
}

/** Colours are set through the CSSOM: the page's CSP forbids style attributes. */
export function paintPost(el) {
  for (const avatar of el.querySelectorAll(".avatar[data-color-key]")) {
    if (!avatar.classList.contains("avatar-system")) avatar.style.backgroundColor = avatarColor(avatar.dataset.colorKey);
  }
  for (const bar of el.querySelectorAll("[data-bar-color]")) bar.style.borderLeftColor = bar.dataset.barColor;
  for (const btn of el.querySelectorAll("[data-custom-color]")) {
    btn.style.color = btn.dataset.customColor;
    btn.style.borderColor = btn.dataset.customColor;
  }
  return el;
}

function renderAttachments(post, attachments, view, md) {
  if (!Array.isArray(attachments) || !attachments.length) return null;
  return h("div", { class: "attachments" },
    attachments.filter((a) => a && typeof a === "object").map((a) => renderAttachment(post, a, view, md)));
}

function renderAttachment(post, a, view, md) {
  const plain = { ...md, username: "" }; // field titles and attachment titles: no mention highlight
  const pretext = a.pretext
    ? h("div", { class: "attachment-pretext markdown", html: renderMarkdown(a.pretext, md) }) : null;
  const authorBits = a.author_name ? h("span", { class: "attachment-author-name", text: a.author_name }) : null;
  const author = authorBits ? h("div", { class: "attachment-author" }, isHttp(a.author_link)
    ? h("a", { href: a.author_link, target: "_blank", rel: "noopener noreferrer" }, authorBits) : authorBits) : null;
  let title = null;
  if (a.title) {
    title = isHttp(a.title_link)
      ? h("h1", { class: "attachment-title" }, h("a", { class: "attachment-title-link", href: a.title_link,
                                                          target: "_blank", rel: "noopener noreferrer",
                                                          text: a.title }))
      : h("h1", { class: "attachment-title", html: renderInline(a.title, plain) });
  }
  const text = a.text ? h("div", { class: "attachment-text markdown", html: renderMarkdown(a.text, md) }) : null;
  const image = isHttp(a.image_url) ? h("div", { class: "attachment-image" },
    h("a", { href: a.image_url, target: "_blank", rel: "noopener noreferrer", text: a.image_url })) : null;
  const fields = renderFields(a.fields, md, plain);
  const footer = a.footer ? h("div", { class: "attachment-footer", text: truncate(String(a.footer), FOOTER_MAX) })
    : null;
  const actionList = (Array.isArray(a.actions) ? a.actions : [])
    .filter((action) => action && typeof action === "object" && action.id && action.name);
  const actions = actionList.length
    ? h("div", { class: "attachment-actions" }, actionList.map((action) => renderAction(post, action, view)))
    : null;
  const thumb = isHttp(a.thumb_url) ? h("div", { class: "attachment-thumb" },
    h("a", { href: a.thumb_url, target: "_blank", rel: "noopener noreferrer", text: "thumbnail" })) : null;
  const hasContent = author || title || thumb || text || image || fields || footer || actions;
  // A colour that is not "#..." names a class (good, warning, danger), as in the web app.
  const color = typeof a.color === "string" && a.color.startsWith("#") ? safeColor(a.color) : "";
  const named = !color && typeof a.color === "string" && /^[a-z]+$/.test(a.color) ? a.color : "";
  return h("div", { class: `attachment-wrap${a.pretext ? " attachment--pretext" : ""}` },
    pretext,
    hasContent ? h("div", {
      class: `attachment${named ? ` attachment--${named}` : ""}`,
      dataset: color ? { barColor: color } : {},
    },
    h("div", { class: "attachment-body" },
      author, title, text, image, fields, footer, actions,
      h("div", { class: "action-error", role: "alert" })),
    thumb) : null);
}

function renderFields(fields, md, plain) {
  if (!Array.isArray(fields) || !fields.length) return null;
  // getFieldsTable: a row holds up to two short fields; a long field (short !== true) has a row alone.
  const rows = [];
  let row = [];
  let lastWasLong = false;
  for (const f of fields.filter((x) => x && typeof x === "object")) {
    const short = f.short === true;
    if (row.length === 2 || !short || lastWasLong) {
      if (row.length) rows.push(row);
      row = [];
      lastWasLong = false;
    }
    row.push(f);
    lastWasLong = !short;
  }
  if (row.length) rows.push(row);
  return h("div", { class: "attachment-fields-wrap" }, rows.map((r) => h("table", { class: "attachment-fields" },
    h("thead", {}, h("tr", {}, r.map((f) => h("th", { class: "attachment-field-caption",
                                                       html: renderInline(String(f.title ?? ""), plain) })))),
    h("tbody", {}, h("tr", {}, r.map((f) => h("td", { class: "attachment-field markdown",
                                                      html: renderMarkdown(String(f.value ?? ""), md) })))))));
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}\u2026` : text;
}

function isHttp(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url);
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
    const options = selectOptions(action, view);
    const select = h("select", { class: "action-select", "aria-label": action.name,
                                 disabled: Boolean(action.disabled) },
      h("option", { value: "", text: action.name }),
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
    text: action.name,
  });
  button.addEventListener("click", () => run(button, undefined));
  return button;
}

function selectOptions(action, view) {
  // data_source users/channels: the web app's menu searches people or channels instead of options.
  if (action.data_source === "users" && view.choices) return view.choices("users");
  if (action.data_source === "channels" && view.choices) return view.choices("channels");
  return (Array.isArray(action.options) ? action.options : []).filter((o) => o && typeof o === "object");
}
