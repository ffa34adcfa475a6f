// The sandbox's web client: sign in, the sidebar, a channel's posts, the message box and dialogs,
// all through /api/v4 and the WebSocket, as Mattermost's web app does.

import { Api, ApiError, Socket } from "./api.js";
import { showAuthorize } from "./authorize.js";
import { Composer } from "./composer.js";
import { showDialog } from "./dialog.js";
import { dayOf, h } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { paintPost, renderPost } from "./posts.js";
import { renderSidebar } from "./sidebar.js";

const api = new Api();
const $ = (selector) => document.querySelector(selector);

const SIDEBAR_EVENTS = new Set([
  "channel_created", "channel_updated", "channel_deleted", "channel_restored", "direct_added", "group_added",
  "added_to_team", "leave_team", "sidebar_category_created", "sidebar_category_updated",
  "sidebar_category_deleted", "sidebar_category_order_updated",
]);

const state = {
  me: null,
  users: new Map(),
  teams: [],
  team: null,
  channels: new Map(),
  members: new Map(),
  categories: [],
  mentions: new Map(),
  current: "",
  posts: new Map(), // the open channel's posts by id
  ephemerals: new Map(), // channel id -> ephemeral posts received this session (never stored server-side)
  config: {}, // GET /config/client?format=old: what the web app reads its settings from
  thread: null, // the open thread (right-hand side): { root, posts: Map } or null
  commands: null,
  socket: null,
  sidebarTimer: null,
};

// -- sign in ---------------------------------------------------------------------------------------
function showLogin(message = "") {
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  $("#login-id").focus();
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("#login-error").textContent = "";
  const button = $("#login-submit");
  button.disabled = true;
  try {
    const user = await api.post("/users/login", { login_id: $("#login-id").value.trim(),
                                                  password: $("#login-password").value });
    $("#login-password").value = "";
    const target = loginRedirect();
    if (target) {
      location.assign(target);
      return;
    }
    await start(user);
  } catch (err) {
    $("#login-error").textContent = err.message;
  } finally {
    button.disabled = false;
  }
});

/**
 * Where to go after signing in: `/login?redirect_to=<path>` (where /oauth/authorize sends people who are
 * not signed in). As the web app's login (finishSignin: `redirectTo.match(/^\/([^/]|$)/)`), only a path
 * on this server counts; a backslash after the slash is refused too (browsers read "/\host" as
 * "//host"), and the resolved address must keep this origin. Anything else: the usual start page.
 */
function loginRedirect() {
  if (location.pathname !== "/login") return "";
  const target = new URLSearchParams(location.search).get("redirect_to") || "";
  if (!/^\/([^/\\]|$)/.test(target)) return "";
  const url = new URL(target, location.origin);
  if (url.origin !== location.origin) return "";
  return url.pathname + url.search + url.hash;
}

$("#logout").addEventListener("click", async () => {
  state.socket?.close();
  try {
    await api.post("/users/logout");
  } finally {
    location.hash = "";
    location.reload();
  }
});

// -- users -------------------------------------------------------------------------------------------
function user(id) {
  return state.users.get(id);
}

async function loadUsers(ids) {
  const missing = [...new Set(ids)].filter((id) => id && !state.users.has(id));
  if (!missing.length) return;
  for (const u of await api.post("/users/ids", missing)) state.users.set(u.id, u);
}

// -- start and teams -------------------------------------------------------------------------------
async function start(me) {
  state.me = me;
  state.users.set(me.id, me);
  state.config = await api.get("/config/client?format=old").catch(() => ({}));
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#me-name").textContent = `@${me.username}`;
  if (location.pathname === "/login") history.replaceState(null, "", `/${location.hash}`);
  loadAppLinks();
  state.teams = await api.get("/users/me/teams");
  const select = $("#team-select");
  select.replaceChildren(...state.teams.map((t) => h("option", { value: t.id, text: t.display_name })));
  select.hidden = state.teams.length < 2;
  if (!state.teams.length) {
    $("#team-name").textContent = "No team";
    $("#posts").replaceChildren(h("p", { class: "empty", text: "You are not on any team yet." }));
    return;
  }
  state.socket = new Socket({ onEvent, onResync: resync, onState: (up) => {
    $("#connection").hidden = up;
  } });
  state.socket.open();
  const [wantedTeam] = parseHash();
  const team = state.teams.find((t) => t.name === wantedTeam) || state.teams[0];
  await openTeam(team);
}

// -- app links ---------------------------------------------------------------------------------------
// The trusted OAuth apps (e.g. the Playbooks dashboard) as links in the header, by name. A sandbox-only
// route lists them (GET /sandbox/webclient/apps); a real Mattermost shows products its own way.
async function loadAppLinks() {
  let apps = [];
  try {
    apps = await new Api("").get("/sandbox/webclient/apps");
  } catch {
    return;
  }
  const links = apps
    .filter((a) => /^https?:\/\//.test(a.homepage))
    .map((a) => h("a", { href: a.homepage, target: "_blank", rel: "noopener noreferrer", text: a.name }));
  $("#app-links").replaceChildren(...links);
  $("#app-links").hidden = !links.length;
}

$("#team-select").addEventListener("change", (e) => {
  const team = state.teams.find((t) => t.id === e.target.value);
  if (team) openTeam(team);
});

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  return [decodeURIComponent(parts[0] || ""), decodeURIComponent(parts[1] || "")];
}

async function openTeam(team) {
  state.team = team;
  state.commands = null;
  $("#team-name").textContent = team.display_name;
  $("#team-select").value = team.id;
  await loadSidebar();
  const [, wanted] = parseHash();
  const channels = [...state.channels.values()];
  const channel = channels.find((c) => c.name === wanted) || channels.find((c) => c.name === "town-square")
    || channels[0];
  if (channel) await openChannel(channel);
}

// -- sidebar ---------------------------------------------------------------------------------------
async function loadSidebar() {
  const tid = state.team.id;
  const [channels, categories, members] = await Promise.all([
    api.get(`/users/me/teams/${tid}/channels`),
    api.get(`/users/me/teams/${tid}/channels/categories`),
    api.get(`/users/me/teams/${tid}/channels/members`),
  ]);
  if (state.team.id !== tid) return;
  state.channels = new Map(channels.map((c) => [c.id, c]));
  state.members = new Map(members.map((m) => [m.channel_id, m]));
  const byId = new Map(categories.categories.map((c) => [c.id, c]));
  state.categories = categories.order.map((id) => byId.get(id)).filter(Boolean);
  const dmUsers = channels.filter((c) => c.type === "D").flatMap((c) => c.name.split("__"));
  await loadUsers(dmUsers);
  drawSidebar();
}

function scheduleSidebar() {
  // Several events usually arrive together (channel, membership, categories): reload once.
  clearTimeout(state.sidebarTimer);
  state.sidebarTimer = setTimeout(() => loadSidebar().catch(reportError), 30);
}

function isUnread(id) {
  if (id === state.current) return false;
  const channel = state.channels.get(id);
  const member = state.members.get(id);
  return Boolean(channel && member && channel.total_msg_count > member.msg_count);
}

function drawSidebar() {
  const sections = renderSidebar({
    me: state.me, channels: state.channels, categories: state.categories, current: state.current,
    teamName: state.team.name, user, unread: isUnread, mentions: (id) => state.mentions.get(id) || 0,
    onOpen: (channel) => openChannel(channel).catch(reportError),
    onToggle: (category) => toggleCategory(category).catch(reportError),
  });
  $("#categories").replaceChildren(...sections);
  const unread = [...state.channels.keys()].some(isUnread);
  document.title = `${unread ? "* " : ""}${state.channels.get(state.current)?.display_name || "Sandbox"} - Mattermost sandbox`;
}

async function toggleCategory(category) {
  const updated = { ...category, collapsed: !category.collapsed };
  category.collapsed = !category.collapsed;
  drawSidebar();
  await api.put(`/users/me/teams/${state.team.id}/channels/categories/${category.id}`, updated);
}

// -- channel view ----------------------------------------------------------------------------------
async function openChannel(channel) {
  const previous = state.current;
  if (state.thread && state.thread.root.channel_id !== channel.id) {
    state.thread = null;
    drawThread();
  }
  state.current = channel.id;
  state.mentions.delete(channel.id);
  history.replaceState(null, "", `#/${state.team.name}/${channel.name}`);
  $("#channel-title").textContent = channel.type === "D" ? $(`[data-channel-id="${channel.id}"] .channel-name`)?.textContent || "Direct message" : channel.display_name;
  $("#channel-header").replaceChildren();
  if (channel.header || channel.purpose) {
    $("#channel-header").innerHTML = renderMarkdown(channel.header || channel.purpose,
                                                    { username: state.me.username, channel: channelByName });
  }
  composer.setPlaceholder(channel.type === "D" ? "this conversation" : channel.display_name);
  drawSidebar();
  const list = await api.get(`/channels/${channel.id}/posts?per_page=60`);
  if (state.current !== channel.id) return;
  await loadUsers(Object.values(list.posts).map((p) => p.user_id));
  state.posts = new Map(list.order.map((id) => [id, list.posts[id]]));
  drawPosts(true);
  const member = state.members.get(channel.id);
  if (member) member.msg_count = channel.total_msg_count;
  drawSidebar();
  await api.post("/channels/members/me/view", { channel_id: channel.id, prev_channel_id: previous || "" });
}

// Collapsed reply threads (the server's CollapsedThreads): the channel shows root posts; replies live in
// their thread, opened from the root's "N replies". Ephemeral posts are the exception: the web app puts
// them in the channel even when they answer a post (reducers/entities/posts.ts postsInChannel,
// RECEIVED_NEW_POST: `crtEnabled && post.root_id && post.type !== EPHEMERAL`), so a click's answer
// shows at the bottom of the channel as the newest post, and in the thread of the post clicked.
function collapsed() {
  return state.config.CollapsedThreads !== "disabled";
}

function visiblePosts() {
  const list = [...state.posts.values(), ...(state.ephemerals.get(state.current) || [])];
  return list.filter((p) => (p.type === "system_ephemeral" || !p.root_id || !collapsed()) && !(p.root_id && p.delete_at))
    .sort((a, b) => a.create_at - b.create_at);
}

function replyCount(post) {
  if (post.root_id || post.type === "system_ephemeral") return 0;
  const seen = [...state.posts.values()].filter((p) => p.root_id === post.id && !p.delete_at).length;
  return Math.max(seen, typeof post.reply_count === "number" ? post.reply_count : 0);
}

function channelByName(name) {
  for (const c of state.channels.values()) {
    if (c.name === name && (c.type === "O" || c.type === "P")) {
      return { display_name: c.display_name, team_name: state.team.name };
    }
  }
  return undefined;
}

function postView() {
  return { me: state.me, config: state.config, user, channel: channelByName, onAction: clickAction,
           replyCount: collapsed() ? replyCount : () => 0, onReplies: (post) => openThread(post).catch(reportError),
           choices: dialogChoices };
}

// -- the thread (right-hand side) ----------------------------------------------------------------------
async function openThread(post) {
  const rootId = post.root_id || post.id;
  const root = state.posts.get(rootId) || (post.root_id ? { ...post, id: rootId, root_id: "" } : post);
  state.thread = { root, posts: new Map() };
  drawThread();
  const list = await api.get(`/posts/${root.id}/thread`);
  if (!state.thread || state.thread.root.id !== root.id) return;
  await loadUsers(Object.values(list.posts).map((p) => p.user_id));
  for (const id of list.order) state.thread.posts.set(id, list.posts[id]);
  drawThread();
}

function threadPosts() {
  const t = state.thread;
  const ephemeral = (state.ephemerals.get(t.root.channel_id) || []).filter((p) => p.root_id === t.root.id);
  const replies = [...t.posts.values()].filter((p) => p.id !== t.root.id && !p.delete_at);
  return [...replies, ...ephemeral].sort((a, b) => a.create_at - b.create_at);
}

function drawThread() {
  const panel = $("#thread");
  if (!state.thread) {
    panel.hidden = true;
    $("#app").classList.remove("with-thread");
    return;
  }
  const view = { ...postView(), replyCount: () => 0 };
  const root = state.posts.get(state.thread.root.id) || state.thread.posts.get(state.thread.root.id)
    || state.thread.root;
  $("#thread-posts").replaceChildren(paintPost(renderPost(root, view)),
    h("div", { class: "thread-separator", text: threadPosts().length === 1 ? "1 reply" : `${threadPosts().length} replies` }),
    ...threadPosts().map((p) => paintPost(renderPost(p, view))));
  panel.hidden = false;
  $("#app").classList.add("with-thread");
}

$("#thread-close").addEventListener("click", () => {
  state.thread = null;
  drawThread();
});

function drawPosts(scrollToEnd = false) {
  const box = $("#posts");
  const atEnd = scrollToEnd || box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  const items = [];
  let day = "";
  for (const post of visiblePosts()) {
    const d = dayOf(post.create_at);
    if (d !== day) {
      items.push(h("div", { class: "day-separator", text: d }));
      day = d;
    }
    items.push(paintPost(renderPost(post, postView())));
  }
  if (!items.length) items.push(h("p", { class: "empty", text: "No messages yet." }));
  box.replaceChildren(...items);
  if (atEnd) box.scrollTop = box.scrollHeight;
}

function replacePost(post) {
  // Edits update the one post in place, so the reader keeps their scroll position.
  const old = document.querySelector(`#posts .post[data-post-id="${CSS.escape(post.id)}"]`);
  if (!old) {
    drawPosts();
    return;
  }
  old.replaceWith(paintPost(renderPost(post, postView())));
}

// ~channel links in messages open the channel, as in the web app (a public channel one is not in yet is
// joined first, as the web app does when you follow a link to it).
document.addEventListener("click", (e) => {
  const link = e.target instanceof Element ? e.target.closest("a[data-channel-mention]") : null;
  if (!link) return;
  e.preventDefault();
  openChannelByName(link.dataset.channelMention).catch(reportError);
});

async function openChannelByName(name) {
  let channel = [...state.channels.values()].find((c) => c.name === name);
  if (!channel) {
    const found = await api.get(`/teams/name/${encodeURIComponent(state.team.name)}/channels/name/${
      encodeURIComponent(name)}`);
    await api.post(`/channels/${found.id}/members`, { user_id: state.me.id });
    await loadSidebar();
    channel = state.channels.get(found.id) || found;
  }
  await openChannel(channel);
}

async function clickAction(post, action, selected) {
  const body = {};
  if (selected !== undefined) body.selected_option = selected;
  if (action.cookie) body.cookie = action.cookie; // ephemeral posts exist only in this cookie
  await api.post(`/posts/${post.id}/actions/${action.id}`, body);
}

// -- sending -----------------------------------------------------------------------------------------
async function send(text) {
  const channel = state.channels.get(state.current);
  if (!channel) throw new Error("Open a channel first.");
  if (text.startsWith("/")) {
    await api.post("/commands/execute", { command: text, channel_id: channel.id, team_id: state.team.id });
    return;
  }
  const post = await api.post("/posts", { channel_id: channel.id, message: text });
  if (state.current === post.channel_id) {
    state.posts.set(post.id, post);
    drawPosts(true);
  }
}

async function teamCommands() {
  if (!state.commands) {
    const tid = state.team.id;
    state.commands = api.get(`/teams/${tid}/commands/autocomplete`).catch((err) => {
      state.commands = null;
      throw err;
    });
  }
  return state.commands;
}

const composer = new Composer({ send, commands: teamCommands });
$("#composer-slot").replaceWith(composer.el);
// A command registered after the page loaded (the bot starting later) shows up on the next "/".
composer.input.addEventListener("input", () => {
  if (composer.input.value === "/") state.commands = null;
});

// -- dialogs -----------------------------------------------------------------------------------------
function openDialog(request) {
  const channelId = state.current;
  const teamId = state.team.id;
  showDialog(request, {
    me: state.me,
    submit: (body) => api.post("/actions/dialogs/submit", { ...body, channel_id: channelId, team_id: teamId }),
    choices: dialogChoices,
  });
}

function dialogChoices(source) {
  return source === "channels"
    ? [...state.channels.values()].filter((c) => c.type === "O" || c.type === "P")
      .map((c) => ({ text: c.display_name, value: c.id }))
    : [...state.users.values()].filter((u) => !u.is_bot).map((u) => ({ text: `@${u.username}`, value: u.id }));
}

// -- live events -------------------------------------------------------------------------------------
async function onEvent(frame) {
  const { event, data, broadcast } = frame;
  try {
    if (event === "posted" || event === "post_edited" || event === "post_deleted") {
      const post = JSON.parse(data.post);
      await onPost(event, post, data);
    } else if (event === "ephemeral_message") {
      const post = JSON.parse(data.post);
      await loadUsers([post.user_id]);
      const list = state.ephemerals.get(post.channel_id) || [];
      list.push(post);
      state.ephemerals.set(post.channel_id, list);
      if (post.channel_id === state.current) drawPosts(true);
      if (state.thread && post.root_id === state.thread.root.id) drawThread();
    } else if (event === "open_dialog") {
      openDialog(JSON.parse(data.dialog));
    } else if (event === "user_added" || event === "user_removed") {
      const affected = data.user_id || broadcast.user_id;
      if (affected === state.me.id) scheduleSidebar();
    } else if (event === "multiple_channels_viewed" || event === "channel_viewed") {
      const times = data.channel_times || { [data.channel_id]: Date.now() };
      for (const id of Object.keys(times)) {
        const member = state.members.get(id);
        const channel = state.channels.get(id);
        if (member && channel) member.msg_count = channel.total_msg_count;
        state.mentions.delete(id);
      }
      drawSidebar();
    } else if (SIDEBAR_EVENTS.has(event)) {
      if (!data.team_id || !state.team || data.team_id === state.team.id || event === "added_to_team") {
        scheduleSidebar();
      }
    }
  } catch (err) {
    reportError(err);
  }
}

async function onPost(event, post, data) {
  const channel = state.channels.get(post.channel_id);
  if (event === "posted") {
    if (!channel) {
      scheduleSidebar(); // a channel we just joined
      return;
    }
    channel.total_msg_count += 1;
    channel.last_post_at = post.create_at;
    const member = state.members.get(channel.id);
    if (post.channel_id === state.current || post.user_id === state.me.id) {
      if (member) member.msg_count = channel.total_msg_count;
    } else if (data.mentions && JSON.parse(data.mentions).includes(state.me.id)) {
      state.mentions.set(channel.id, (state.mentions.get(channel.id) || 0) + 1);
    }
  }
  if (post.channel_id === state.current) {
    await loadUsers([post.user_id]);
    if (event === "posted") {
      state.posts.set(post.id, post);
      drawPosts();
    } else if (event === "post_edited" && state.posts.has(post.id)) {
      state.posts.set(post.id, post);
      replacePost(post);
    } else if (event === "post_deleted" && state.posts.has(post.id)) {
      state.posts.set(post.id, { ...post, delete_at: post.delete_at || Date.now() });
      replacePost(state.posts.get(post.id));
    }
  }
  if (state.thread && (post.root_id === state.thread.root.id || post.id === state.thread.root.id)) {
    state.thread.posts.set(post.id, event === "post_deleted" ? { ...post, delete_at: post.delete_at || Date.now() }
      : post);
    if (post.id === state.thread.root.id) state.thread.root = post;
    drawThread();
  }
  if (event === "posted") drawSidebar();
}

async function resync() {
  // A fresh WebSocket session: events in between were lost. Read everything again.
  if (!state.team) return;
  await loadSidebar();
  const channel = state.channels.get(state.current);
  if (channel) await openChannel(channel);
}

function reportError(err) {
  if (err instanceof ApiError && err.status === 401) {
    state.socket?.close();
    showLogin("Your session has expired. Please sign in again.");
    return;
  }
  console.error(err);
  const bar = $("#toast");
  bar.textContent = err.message || String(err);
  bar.hidden = false;
  clearTimeout(bar.timer);
  bar.timer = setTimeout(() => {
    bar.hidden = true;
  }, 6000);
}

window.addEventListener("hashchange", () => {
  const [teamName, channelName] = parseHash();
  if (!state.team) return;
  if (teamName && teamName !== state.team.name) {
    const team = state.teams.find((t) => t.name === teamName);
    if (team) openTeam(team).catch(reportError);
    return;
  }
  const channel = [...state.channels.values()].find((c) => c.name === channelName);
  if (channel && channel.id !== state.current) openChannel(channel).catch(reportError);
});

// -- boot --------------------------------------------------------------------------------------------
(async () => {
  if (location.pathname === "/oauth/authorize") {
    // The OAuth consent page (authorize.js); the server only serves it to a signed-in person.
    try {
      await showAuthorize(api);
    } catch (err) {
      $("#authorize").hidden = false;
      $("#authorize-error").textContent = err.message;
    }
    return;
  }
  try {
    // The session cookie is HttpOnly: asking who we are is how the app knows it is signed in.
    const me = await api.get("/users/me");
    // Already signed in on /login?redirect_to=...: straight on, as the web app does.
    const target = loginRedirect();
    if (target) {
      location.assign(target);
      return;
    }
    await start(me);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showLogin();
    else showLogin(err.message);
  }
})();
