// The channel sidebar: the user's sidebar categories for the team, in their stored order, each listing
// its channels (GET /users/me/teams/{team_id}/channels/categories). Like the web app, an empty
// Favorites or Direct Messages category is hidden, `alpha` and `recent` sortings reorder the stored
// list, collapsing a category is saved with PUT .../categories/{id}, and unread channels are bold with
// a mention count when someone mentioned you.

import { h } from "./dom.js";

function channelLabel(channel, meId, user) {
  if (channel.type === "D") {
    const other = channel.name.split("__").find((id) => id !== meId) || meId;
    return `@${user(other)?.username || "someone"}`;
  }
  return channel.display_name || channel.name;
}

function sorted(category, channels) {
  const list = category.channel_ids.map((id) => channels.get(id)).filter((c) => c && !c.delete_at);
  if (category.sorting === "alpha") {
    list.sort((a, b) => (a.display_name || a.name).localeCompare(b.display_name || b.name));
  } else if (category.sorting === "recent") {
    list.sort((a, b) => b.last_post_at - a.last_post_at);
  }
  return list;
}

/**
 * model: { me, channels: Map, categories: [...], current, unread(id) -> bool, mentions(id) -> int,
 *          user(id), onOpen(channel), onToggle(category) }
 */
export function renderSidebar(model) {
  const sections = [];
  for (const category of model.categories) {
    const channels = sorted(category, model.channels);
    if (!channels.length && (category.type === "favorites" || category.type === "direct_messages")) continue;
    const visible = category.collapsed
      ? channels.filter((c) => c.id === model.current || model.unread(c.id))
      : channels;
    const header = h("button", {
      type: "button", class: "category-header", "aria-expanded": String(!category.collapsed),
      onclick: () => model.onToggle(category),
    }, h("span", { class: "category-caret", "aria-hidden": "true", text: category.collapsed ? "\u25b8" : "\u25be" }),
    h("span", { class: "category-name", text: category.display_name }));
    const items = visible.map((channel) => {
      const unread = model.unread(channel.id);
      const mentions = model.mentions(channel.id);
      const classes = ["sidebar-channel"];
      if (channel.id === model.current) classes.push("active");
      if (unread) classes.push("unread");
      const icon = channel.type === "P" ? "\ud83d\udd12" : channel.type === "D" ? "\u25cf" : "#";
      return h("li", {},
        h("a", {
          class: classes.join(" "), href: `#/${model.teamName}/${channel.name}`,
          dataset: { channelId: channel.id, channelName: channel.name },
          "aria-current": channel.id === model.current ? "page" : undefined,
          onclick: (e) => {
            e.preventDefault();
            model.onOpen(channel);
          },
        },
        h("span", { class: "channel-icon", "aria-hidden": "true", text: icon }),
        h("span", { class: "channel-name", text: channelLabel(channel, model.me.id, model.user) }),
        mentions ? h("span", { class: "mention-badge", text: String(mentions),
                               "aria-label": `${mentions} mentions` }) : null,
        unread && !mentions ? h("span", { class: "unread-dot", "aria-label": "unread" }) : null));
    });
    sections.push(h("section", {
      class: "category", dataset: { categoryId: category.id, categoryName: category.display_name,
                                    categoryType: category.type },
      "aria-label": category.display_name,
    }, header, h("ul", { class: "category-channels" }, items)));
  }
  return sections;
}
