// A small, safe Markdown renderer for posts: the subset Mattermost messages from bots use.
//
// Safety rule: the input is HTML-escaped FIRST, and every tag in the output is one this file writes
// itself. Link targets are checked against an allow-list of schemes and stay escaped inside the
// attribute, so no message text can ever become markup, an event handler or a javascript: URL.
//
// Blocks: paragraphs (single newlines are line breaks, as in Mattermost), # headings, - * + and 1.
// lists (nested by indentation), | tables |, ``` fenced code, > quotes, --- rules.
// Inline: `code`, \\-escapes, **bold**, __bold__, *italic*, _italic_, ~~strike~~, [text](url), bare URLs,
// @mentions, ~channel links (only to channels that exist), :emoji: shortcodes and text smileys.

import { emojiFor } from "./emoji.js";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// Text smileys the web app turns into emoji (utils/emoticons.tsx emoticonPatterns; the user setting
// "render emoticons as emoji" is on by default). They run on escaped text, so `<3` is `&lt;3` here.
const EMOTICONS = [
  ["slightly_smiling_face", /(^|\B)(\\?:-?\))(?!\))($|\B)/g], ["wink", /(^|\B)(\\?;-?\))(?!\))($|\B)/g],
  ["open_mouth", /(^|\B)(\\?:o)($|\b)/gi], ["scream", /(^|\B)(\\?:-o)($|\b)/gi],
  ["smirk", /(^|\B)(\\?:-?])(?!])($|\B)/g], ["smile", /(^|\B)(\\?:-?d)($|\b)/gi],
  ["stuck_out_tongue_closed_eyes", /(^|\b)(\\?x-d)($|\b)/gi], ["stuck_out_tongue", /(^|\B)(\\?:-?p)($|\b)/gi],
  ["rage", /(^|\B)(\\?:-?[[@])($|\B)/g], ["slightly_frowning_face", /(^|\B)(\\?:-?\()(?!\()($|\B)/g],
  ["cry", /(^|\B)(\\?:[`'’]-?\(|\\?:&#39;\()($|\B)/g], ["confused", /(^|\B)(\\?:-?\/)($|\B)/g],
  ["confounded", /(^|\B)(\\?:-?s)($|\b)/gi], ["neutral_face", /(^|\B)(\\?:-?\|)($|\B)/g],
  ["flushed", /(^|\B)(\\?:-?\$)($|\B)/g], ["mask", /(^|\B)(\\?:-x)($|\b)/gi],
  ["heart", /(^|\B)(\\?&lt;3)($|\b)/g], ["broken_heart", /(^|\B)(\\?&lt;\/3)($|\b)/g],
];
// Named emoji, `:name:` not inside a word (emoticons.tsx EMOJI_PATTERN).
const EMOJI_PATTERN = /(?<!\w)(:([\w+-]+):)(?!\w)/g;
// ~channel mentions (text_formatting.tsx autolinkChannelMentions), and what may be trimmed off their end.
const CHANNEL_MENTION = /\B(~([a-z0-9.\-_]*))/gi;
const PUNCTUATION = /[^\p{L}\d]/u;

const SAFE_URL = /^(https?:\/\/|mailto:|\/(?!\/)|#)/i;
const HOLE = "\u0000";

// Inline rendering works on already-escaped text. Finished pieces of HTML go into `holes` and are
// replaced by \0N\0 markers, so later rules never see (or re-format) markup or URLs.
class Inline {
  constructor(options) {
    this.options = options;
    this.holes = [];
  }

  hole(html) {
    this.holes.push(html);
    return `${HOLE}${this.holes.length - 1}${HOLE}`;
  }

  fill(text) {
    // Holes can contain holes (a link whose text has code), so fill until none are left.
    let out = text;
    for (let i = 0; i < 5 && out.includes(HOLE); i += 1) {
      out = out.replace(/\u0000(\d+)\u0000/g, (_, n) => this.holes[Number(n)]);
    }
    return out;
  }

  render(escaped) {
    let t = escaped;
    t = t.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, __, code) => this.hole(`<code>${code.trim()}</code>`));
    // Backslash escapes (the bot escapes user text this way): the character stands for itself.
    t = t.replace(/\\(&(?:amp|lt|gt|quot|#39);|[!-\/:-@\[-`{-~])/g, (_, ch) => this.hole(ch));
    t = t.replace(/\[([^\]\n]+)\]\(([^)\s]+)\)/g, (whole, label, href) => this.link(label, href) ?? whole);
    t = t.replace(/https?:\/\/[^\s\u0000]+/g, (found) => this.autolink(found));
    t = this.mentions(t);
    t = this.channelMentions(t);
    t = this.emoji(t);
    t = this.emphasis(t);
    return this.fill(t);
  }

  emoji(text) {
    // A known name becomes the emoji; an unknown one stays as written. "\:)" is a smiley left as text.
    let t = text.replace(EMOJI_PATTERN, (whole, _, name) => {
      const char = emojiFor(name.toLowerCase());
      return char ? this.hole(`<span class="emoji" title=":${name.toLowerCase()}:">${char}</span>`) : whole;
    });
    for (const [name, pattern] of EMOTICONS) {
      t = t.replace(pattern, (whole, before, match) => (match.startsWith("\\") ? before + match.slice(1)
        : before + this.hole(`<span class="emoji" title=":${name}:">${emojiFor(name)}</span>`)));
    }
    return t;
  }

  channelMentions(text) {
    // Only a channel that exists (one the viewer has, or one the server named in the post's
    // channel_mentions) becomes a link, shown by its display name; `~30` in "in ~30 minutes" stays text.
    // The end of the name loses punctuation until a channel matches ("~town-square." -> town-square).
    const find = this.options.channel || (() => undefined);
    return text.replace(CHANNEL_MENTION, (whole, mention, raw, offset, all) => {
      if (all[offset - 1] === "~" || all[offset + whole.length] === "~") return whole; // ~~strike~~
      let name = raw.toLowerCase();
      let suffix = "";
      let channel = find(name);
      while (!channel && name && PUNCTUATION.test(name[name.length - 1])) {
        suffix = raw.slice(name.length - 1);
        name = name.slice(0, -1);
        channel = find(name);
      }
      if (!channel) return whole;
      const team = escapeHtml(channel.team_name || "");
      const href = `#/${encodeURIComponent(channel.team_name || "")}/${encodeURIComponent(name)}`;
      const label = escapeHtml(channel.display_name || name);
      return this.hole(`<a class="mention-link channel-link" href="${escapeHtml(href)}" data-channel-mention="${
        escapeHtml(name)}" data-channel-mention-team="${team}">~${label}</a>`) + suffix;
    });
  }

  link(label, href) {
    const target = href.replace(/&amp;/g, "&");
    if (!SAFE_URL.test(target)) return null;
    const external = /^(https?:|mailto:)/i.test(target);
    const rel = external ? ' target="_blank" rel="noopener noreferrer"' : "";
    return this.hole(`<a href="${href}"${rel}>${this.emphasis(this.mentions(label))}</a>`);
  }

  autolink(found) {
    // The URL ends before any escaped quote or angle bracket, and before trailing punctuation.
    let url = found;
    let rest = "";
    const stop = url.search(/&(lt|gt|quot|#39);/);
    if (stop >= 0) {
      rest = url.slice(stop);
      url = url.slice(0, stop);
    }
    const trail = url.match(/[.,;:!?)]+$/);
    if (trail) {
      rest = trail[0] + rest;
      url = url.slice(0, -trail[0].length);
    }
    if (url.length <= "https://".length) return found;
    return this.hole(`<a href="${url}" target="_blank" rel="noopener noreferrer">${url}</a>`) + rest;
  }

  mentions(text) {
    const me = (this.options.username || "").toLowerCase();
    let t = text.replace(/(^|[^\w@.])@([a-z0-9][a-z0-9.\-_]*)/gi, (whole, before, raw) => {
      const name = raw.replace(/[.\-_]+$/, "");
      const tail = raw.slice(name.length);
      const lower = name.toLowerCase();
      const self = lower === me || ["channel", "all", "here"].includes(lower);
      const cls = self ? "mention mention-me" : "mention";
      return `${before}${this.hole(`<span class="${cls}" data-mention="${lower}">@${name}</span>`)}${tail}`;
    });
    return t;
  }

  emphasis(text) {
    let t = text;
    t = t.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, (_, s) => `<strong>${s}</strong>`);
    t = t.replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, (_, b, s) => `${b}<strong>${s}</strong>`);
    t = t.replace(/~~(?=\S)([\s\S]*?\S)~~/g, (_, s) => `<del>${s}</del>`);
    t = t.replace(/(^|[^*\w])\*(?=[^\s*])([^*]*?[^\s*])\*(?!\*)/g, (_, b, s) => `${b}<em>${s}</em>`);
    t = t.replace(/(^|[^\w])_(?=[^\s_])([^_]*?[^\s_])_(?!\w)/g, (_, b, s) => `${b}<em>${s}</em>`);
    return t;
  }
}

const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEPARATOR = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;

function splitRow(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, "|"));
}

function alignments(separator) {
  return splitRow(separator).map((cell) => {
    const left = cell.startsWith(":");
    const right = cell.endsWith(":");
    if (left && right) return "center";
    if (right) return "right";
    if (left) return "left";
    return "";
  });
}

// Renders escaped lines (no raw text gets here) into block HTML.
function renderBlocks(lines, inline) {
  const out = [];
  let i = 0;
  const para = [];
  const flush = () => {
    if (para.length) {
      out.push(`<p>${para.map((l) => inline.render(l)).join("<br>")}</p>`);
      para.length = 0;
    }
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(```|~~~)\s*([\w+\-]*)\s*$/);
    if (fence) {
      flush();
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) {
        body.push(lines[i]);
        i += 1;
      }
      i += 1;
      out.push(`<pre class="code-block"><code>${body.join("\n")}</code></pre>`);
      continue;
    }
    if (!line.trim()) {
      flush();
      i += 1;
      continue;
    }
    const heading = line.match(/^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/);
    if (heading) {
      flush();
      const level = heading[1].length;
      out.push(`<h${level} class="md-h">${inline.render(heading[2])}</h${level}>`);
      i += 1;
      continue;
    }
    if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      out.push("<hr>");
      i += 1;
      continue;
    }
    if (/^\s*&gt;/.test(line)) {
      flush();
      const quoted = [];
      while (i < lines.length && /^\s*&gt;/.test(lines[i])) {
        quoted.push(lines[i].replace(/^\s*&gt;\s?/, ""));
        i += 1;
      }
      out.push(`<blockquote>${renderBlocks(quoted, inline)}</blockquote>`);
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_SEPARATOR.test(lines[i + 1])
        && lines[i + 1].includes("-")) {
      flush();
      const header = splitRow(line);
      const align = alignments(lines[i + 1]);
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
        rows.push(splitRow(lines[i]));
        i += 1;
      }
      const cell = (tag, text, col) => {
        const cls = align[col] ? ` class="align-${align[col]}"` : "";
        return `<${tag}${cls}>${inline.render(text ?? "")}</${tag}>`;
      };
      const head = `<tr>${header.map((h, c) => cell("th", h, c)).join("")}</tr>`;
      const body = rows.map((r) => `<tr>${header.map((_, c) => cell("td", r[c], c)).join("")}</tr>`).join("");
      out.push(`<div class="table-wrap"><table class="md-table"><thead>${head}</thead><tbody>${body}</tbody></table></div>`);
      continue;
    }
    if (LIST_ITEM.test(line)) {
      flush();
      const items = [];
      while (i < lines.length && (LIST_ITEM.test(lines[i]) || (/^\s{2,}\S/.test(lines[i]) && items.length))) {
        const m = lines[i].match(LIST_ITEM);
        if (m) items.push({ indent: m[1].replace(/\t/g, "    ").length, ordered: /\d/.test(m[2]),
                            start: parseInt(m[2], 10), text: m[3] });
        else items[items.length - 1].text += `<br>${lines[i].trim()}`;
        i += 1;
      }
      out.push(renderList(items, 0, inline).html);
      continue;
    }
    para.push(line);
    i += 1;
  }
  flush();
  return out.join("");
}

// Items of one list level start at items[from]; deeper-indented items become a nested list.
function renderList(items, from, inline) {
  const first = items[from];
  const tag = first.ordered ? "ol" : "ul";
  const start = first.ordered && first.start !== 1 && Number.isFinite(first.start) ? ` start="${first.start}"` : "";
  const parts = [];
  let i = from;
  while (i < items.length && items[i].indent >= first.indent) {
    if (items[i].indent > first.indent) {
      const nested = renderList(items, i, inline);
      parts[parts.length - 1] = parts[parts.length - 1].replace(/<\/li>$/, `${nested.html}</li>`);
      i = nested.next;
      continue;
    }
    // Checkbox items "[ ]" / "[x]" render as read-only boxes, as GitHub-flavoured Markdown does.
    let text = items[i].text;
    let box = "";
    const task = text.match(/^\[([ xX])\]\s+(.*)$/);
    if (task) {
      box = `<span class="task-box">${task[1] === " " ? "\u2610" : "\u2611"}</span> `;
      text = task[2];
    }
    parts.push(`<li>${box}${inline.render(text)}</li>`);
    i += 1;
  }
  return { html: `<${tag}${start}>${parts.join("")}</${tag}>`, next: i };
}

/**
 * Markdown -> HTML string that is safe to assign to innerHTML.
 * options.username: the viewer, whose @mentions are highlighted.
 * options.channel(name): {display_name, team_name} of the team's channel by that name, or undefined.
 */
export function renderMarkdown(text, options = {}) {
  const clean = String(text ?? "").replace(/\u0000/g, "").replace(/\r\n?/g, "\n");
  const escaped = escapeHtml(clean);
  return renderBlocks(escaped.split("\n"), new Inline(options));
}

/** Inline-only rendering (attachment titles, field titles, dialog help). */
export function renderInline(text, options = {}) {
  const clean = String(text ?? "").replace(/\u0000/g, "");
  return new Inline(options).render(escapeHtml(clean));
}
