// The message box: Enter sends (Shift+Enter is a new line). Text starting with "/" runs a slash command
// through POST /commands/execute, anything else becomes a post (POST /posts). While the first word is a
// command being typed, the team's autocomplete commands (GET /teams/{team_id}/commands/autocomplete)
// are suggested with their hint and description; Tab or Enter takes the highlighted one.

import { h } from "./dom.js";

export class Composer {
  /** send(text) -> Promise; commands() -> Promise<[{trigger, auto_complete_hint, auto_complete_desc}]> */
  constructor({ send, commands }) {
    this.send = send;
    this.commands = commands;
    this.matches = [];
    this.selected = 0;
    this.busy = false;
    this.input = h("textarea", { class: "composer-input", rows: 1, "aria-label": "Write a message",
                                 placeholder: "Write a message, or / for commands", autocomplete: "off" });
    this.list = h("ul", { class: "autocomplete", role: "listbox", "aria-label": "Commands", hidden: true });
    this.error = h("div", { class: "composer-error", role: "alert" });
    this.el = h("div", { class: "composer" }, this.list, this.input, this.error);
    this.input.addEventListener("keydown", (e) => this.onKey(e));
    this.input.addEventListener("input", () => this.suggest());
  }

  setPlaceholder(channelName) {
    this.input.placeholder = `Write to ${channelName}, or / for commands`;
  }

  async suggest() {
    this.error.textContent = "";
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 200)}px`;
    const text = this.input.value;
    const typing = text.match(/^\/(\S*)$/);
    const args = text.match(/^\/(\S+)\s/);
    if (!typing && !args) {
      this.hide();
      return;
    }
    let all;
    try {
      all = await this.commands();
    } catch {
      all = [];
    }
    if (this.input.value !== text) return; // typed on meanwhile; a later call will suggest
    if (typing) {
      const word = typing[1].toLowerCase();
      this.matches = all.filter((c) => c.trigger.startsWith(word))
        .sort((a, b) => a.trigger.localeCompare(b.trigger));
      this.selected = 0;
      this.show(this.matches.map((c, i) => this.item(c, i, true)));
    } else {
      // After the trigger: show its usage hint, not selectable.
      const command = all.find((c) => c.trigger === args[1].toLowerCase());
      this.matches = [];
      if (command && (command.auto_complete_hint || command.auto_complete_desc) && text.split(/\s+/).length <= 2) {
        this.show([this.item(command, -1, false)]);
      } else {
        this.hide();
      }
    }
  }

  item(command, index, selectable) {
    return h("li", {
      role: "option", class: index === this.selected && selectable ? "selected" : "",
      "aria-selected": String(index === this.selected && selectable),
      onmousedown: selectable ? (e) => {
        e.preventDefault();
        this.take(index);
      } : undefined,
    },
    h("span", { class: "ac-trigger", text: `/${command.trigger}` }),
    command.auto_complete_hint ? h("span", { class: "ac-hint", text: ` ${command.auto_complete_hint}` }) : null,
    command.auto_complete_desc ? h("span", { class: "ac-desc", text: command.auto_complete_desc }) : null);
  }

  show(items) {
    this.list.replaceChildren(...items);
    this.list.hidden = items.length === 0;
  }

  hide() {
    this.matches = [];
    this.list.hidden = true;
    this.list.replaceChildren();
  }

  take(index) {
    const command = this.matches[index];
    if (!command) return;
    this.input.value = `/${command.trigger} `;
    this.input.focus();
    this.suggest();
  }

  onKey(e) {
    if (this.matches.length && !this.list.hidden) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const n = this.matches.length;
        this.selected = (this.selected + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
        this.show(this.matches.map((c, i) => this.item(c, i, true)));
        return;
      }
      if (e.key === "Tab" || (e.key === "Enter" && !e.shiftKey
          && this.input.value.trim() !== `/${this.matches[this.selected].trigger}`)) {
        e.preventDefault();
        this.take(this.selected);
        return;
      }
      if (e.key === "Escape") {
        this.hide();
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    }
  }

  async submit() {
    const text = this.input.value.trim();
    if (!text || this.busy) return;
    this.busy = true;
    this.error.textContent = "";
    try {
      await this.send(text);
      this.input.value = "";
      this.input.style.height = "auto";
      this.hide();
    } catch (err) {
      this.error.textContent = err.message || "Could not send.";
    } finally {
      this.busy = false;
      this.input.focus();
    }
  }
}
