"""File routes (api4/file.go): upload, download, info; and attaching uploaded files to a new post.

Proof, all in mattermost/mattermost:
- `POST /api/v4/files` is `uploadFileStream` (server/channels/api4/file.go): EnableFileAttachments off ->
  403 api.file.attachments.disabled.app_error; `Content-Length: 0` -> 400
  api.file.upload_file.read_request.app_error; a `multipart/form-data` body goes to `uploadFileMultipart`,
  anything else to `uploadFileSimple` (`?channel_id=&filename=`, the body is the file). It answers 201
  with a model.FileUploadResponse `{"file_infos": [...], "client_ids": [...]}`.
- `uploadFileMultipart`: form fields `channel_id` and `client_ids` (any other field name ->
  api.context.invalid_param.app_error for that name); a file part needs the channel (RequireChannelId) and
  `upload_file` in it (SessionHasPermissionToChannelContent); client ids, if any, one per file
  (api.file.upload_file.incorrect_number_of_client_ids.app_error); `client_ids` is always an array here.
  A file part before `channel_id` falls back to `uploadFileMultipartLegacy` (the whole form read first):
  the same checks, in form order.
- `uploadFileSimple`: `client_ids` is `[client_id]` when `?client_id=` is given, else null
  (model.FileUploadResponse has no omitempty).
- Size: app/file.go UploadFileX: `ContentLength > maxFileSize` (simple form) or `written > maxFileSize`
  (multipart, ContentLength -1) -> 413 api.file.upload_file.too_large_detailed.app_error, nothing kept.
- The FileInfo (server/public/model/file_info.go NewInfo + UploadFileTask.init): name is the base name,
  extension lower-case without the dot, mime type from the extension (mime.TypeByExtension), creator the
  session user, channel_id the upload's channel, post_id empty (omitempty) until attached.
- `GET /api/v4/files/{file_id}` (getFile) and `/info` (getFileInfo): a missing file -> 404
  app.file_info.get.app_error; allowed to its creator, or to whoever may read the channel of the post it
  is attached to (`SessionHasPermissionToChannelByPost(info.PostId, read_channel)`); an unattached file is
  its uploader's alone. The content goes out as web.WriteFileResponse writes it: Content-Type from the
  info (text/html and script types served as text/plain), `attachment` unless a media type (images,
  audio, video) or `?download=true` forces it, nosniff, frame-ancestors 'none'.
- Attaching (app/post.go CreatePost -> attachFilesToPost -> FileInfoStore.AttachToPost): each id is
  attached only if not yet attached (`PostId = ''`) and created by the post's author; ids that fail are
  dropped from the post's file_ids silently (the post is still created). api4/post.go createPostChecks
  first requires `upload_file` in the channel when file_ids is not empty (403).
  The sandbox also drops a file uploaded to another channel than the post's: the store code read sets the
  file's ChannelId to the post's instead; a bot never needs that, and this way a bot that passes here
  cannot rely on it.
- The post a client reads carries `metadata.files`, the attached FileInfos (app/post_metadata.go
  PreparePostForClient -> getFileMetadataForPost; `files,omitempty`).
"""
from __future__ import annotations

import mimetypes
import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from sandbox.auth import require_user
from sandbox.errors import AppError, forbidden, invalid_url
from sandbox.ids import is_valid_id, new_id, now_ms
from sandbox.ops import invalid_param
from sandbox.routes._helpers import created, json_response, state_of, url_id
from sandbox.state import Post, State, User

DEFAULT_MAX_FILE_SIZE = 100 * 1024 * 1024  # model/config.go FileSettings.SetDefaults: MaxFileSize 100 MB
MAX_FORM_VALUE = 10 * 1024  # api4/file.go maxMultipartFormDataBytes

# web/file.go (platform/shared/web): served as text/plain, and the media types shown inline.
UNSAFE_CONTENT_TYPES = ("application/javascript", "application/ecmascript", "text/javascript",
                        "text/ecmascript", "application/x-javascript", "text/html")
MEDIA_CONTENT_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/gif", "image/tiff", "image/webp",
                       "video/avi", "video/mpeg", "video/mp4", "video/webm", "video/ogg", "video/quicktime",
                       "video/x-matroska", "audio/mpeg", "audio/wav", "audio/ogg", "audio/webm", "audio/mp4",
                       "audio/x-m4a", "audio/aac", "audio/flac")
# Go's builtin mime table (mime/type.go) carries a charset for these; others come from /etc/mime.types.
_GO_BUILTIN = {".css": "text/css; charset=utf-8", ".htm": "text/html; charset=utf-8",
               ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".mjs": "text/javascript; charset=utf-8", ".xml": "text/xml; charset=utf-8",
               ".md": "text/markdown; charset=utf-8"}


@dataclass
class StoredFile:
    id: str
    user_id: str
    channel_id: str
    name: str
    content: bytes
    create_at: int
    post_id: str = ""

    @property
    def extension(self) -> str:
        return posixpath.splitext(self.name)[1].lower().lstrip(".")

    @property
    def mime_type(self) -> str:
        ext = posixpath.splitext(self.name)[1].lower()
        return _GO_BUILTIN.get(ext) or mimetypes.types_map.get(ext, "")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "user_id": self.user_id, "channel_id": self.channel_id,
            "create_at": self.create_at, "update_at": self.create_at, "delete_at": 0,
            "name": self.name, "extension": self.extension, "size": len(self.content),
            "mime_type": self.mime_type, "mini_preview": None, "remote_id": "", "archived": False,
        }
        if self.post_id:
            data["post_id"] = self.post_id
        return data


def files_of(state: State) -> dict[str, StoredFile]:
    return state.files


def max_file_size(state: State) -> int:
    return int(state.config.get("MaxFileSize", DEFAULT_MAX_FILE_SIZE))


def too_large(name: str, length: int, limit: int) -> AppError:
    return AppError("api.file.upload_file.too_large_detailed.app_error", 413,
                    f"Unable to upload file {name}. {length} bytes exceeds the maximum allowed {limit} bytes.")


def read_request_error(detail: str) -> AppError:
    return AppError("api.file.upload_file.read_request.app_error", 400, "Unable to read the request.",
                    detail)


def _require_upload(state: State, me: User, channel_id: str) -> None:
    if not is_valid_id(channel_id):
        raise invalid_url("channel_id")
    channel = state.channels.get(channel_id)
    if channel is None or not state.has_channel_permission(me, channel, "upload_file"):
        raise forbidden("upload_file", me.id)


def _store(state: State, me: User, channel_id: str, filename: str, content: bytes) -> StoredFile:
    record = StoredFile(id=new_id(), user_id=me.id, channel_id=channel_id,
                        name=posixpath.basename(filename.replace("\\", "/")), content=content,
                        create_at=now_ms())
    files_of(state)[record.id] = record
    return record


async def _read_limited(reader: BodyPartReader, name: str, limit: int, length: int = -1) -> bytes:
    """Read a part or a body, refusing (413) once it passes `limit` (UploadFileX: `written > maxFileSize`)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await reader.read_chunk()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise too_large(name, length, limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def upload(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    if not state.config.get("EnableFileAttachments", True):
        raise AppError("api.file.attachments.disabled.app_error", 403,
                       "File attachments have been disabled on this server.")
    if request.content_length == 0:
        raise read_request_error("Content-Length should not be 0")
    if request.content_type == "multipart/form-data":
        return created(await _upload_multipart(request, state, me))
    return created(await _upload_simple(request, state, me))


async def _upload_simple(request: web.Request, state: State, me: User) -> dict[str, Any]:
    channel_id = request.query.get("channel_id", "")
    filename = request.query.get("filename", "")
    if not is_valid_id(channel_id):
        raise invalid_url("channel_id")
    if not filename:
        raise invalid_url("filename")
    _require_upload(state, me, channel_id)
    limit = max_file_size(state)
    length = request.content_length if request.content_length is not None else -1
    if length > limit:
        raise too_large(filename, length, limit)
    try:
        # Read (not streamed): the spec check may have read it already (sandbox/validation.py).
        content = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large(filename, length, limit) from None
    if len(content) > limit:
        raise too_large(filename, length, limit)
    record = _store(state, me, channel_id, filename, content)
    client_id = request.query.get("client_id", "")
    return {"file_infos": [record.to_json()], "client_ids": [client_id] if client_id else None}


async def _upload_multipart(request: web.Request, state: State, me: User) -> dict[str, Any]:
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise read_request_error(str(exc)) from None
    limit = max_file_size(state)
    channel_id = request.query.get("channel_id", "")
    client_ids: list[str] = []
    expect_client_ids = True
    infos: list[dict[str, Any]] = []
    answered_ids: list[str] = []
    pending: list[tuple[str, bytes]] = []  # files met before channel_id (the legacy, buffered form)
    n_files = 0
    while True:
        try:
            part = await reader.next()
        except ValueError as exc:
            raise read_request_error(str(exc)) from None
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        name = part.name or ""
        if not name:
            continue
        if not part.filename:
            value = (await part.read())[:MAX_FORM_VALUE].decode("utf-8", "replace")
            if name == "channel_id":
                if channel_id and value != channel_id and not pending:
                    raise AppError("api.file.upload_file.multiple_channel_ids.app_error", 400,
                                   "Unable to upload files. Multiple conflicting channel_ids.")
                channel_id = value or channel_id
            elif name == "client_ids":
                if not expect_client_ids:
                    raise invalid_param("client_ids")
                client_ids.append(value)
            else:
                raise invalid_param(name)
            continue
        content = await _read_limited(part, part.filename, limit)
        if not channel_id or pending:
            pending.append((part.filename, content))
            continue
        _require_upload(state, me, channel_id)
        if n_files == 0 and not client_ids:
            expect_client_ids = False
        client_id = ""
        if expect_client_ids:
            if n_files >= len(client_ids):
                raise invalid_param("client_ids")
            client_id = client_ids[n_files]
        infos.append(_store(state, me, channel_id, part.filename, content).to_json())
        if expect_client_ids:
            answered_ids.append(client_id)
        n_files += 1
    if pending:
        return _legacy(state, me, channel_id, client_ids, pending)
    if expect_client_ids and len(client_ids) != n_files:
        raise AppError("api.file.upload_file.incorrect_number_of_client_ids.app_error", 400,
                       f"Unable to upload files. Have {len(client_ids)} client_ids for {n_files} files.")
    return {"file_infos": infos, "client_ids": answered_ids}


def _legacy(state: State, me: User, channel_id: str, client_ids: list[str],
            files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """uploadFileMultipartLegacy: a file came before channel_id, so the whole form was read first."""
    if not channel_id:
        raise invalid_param("channel_id")
    _require_upload(state, me, channel_id)
    if client_ids and len(client_ids) != len(files):
        raise AppError("api.file.upload_file.incorrect_number_of_client_ids.app_error", 400,
                       f"Unable to upload files. Have {len(client_ids)} client_ids for {len(files)} files.")
    infos = [_store(state, me, channel_id, name, content).to_json() for name, content in files]
    return {"file_infos": infos, "client_ids": [c for c in client_ids if c]}


def _readable_file(request: web.Request) -> StoredFile:
    state = state_of(request)
    me = require_user(request)
    record = files_of(state).get(url_id(request, "file_id"))
    if record is None:
        raise AppError("app.file_info.get.app_error", 404, "Unable to get the file info.")
    if record.user_id == me.id:
        return record
    post = state.posts.get(record.post_id) if record.post_id else None
    channel = state.channels.get(post.channel_id) if post is not None else None
    if channel is None or not state.has_channel_permission(me, channel, "read_channel"):
        raise forbidden("read_channel", me.id)
    return record


async def get_file(request: web.Request) -> web.Response:
    record = _readable_file(request)
    content_type = record.mime_type or "application/octet-stream"
    if content_type.startswith(UNSAFE_CONTENT_TYPES):
        content_type = "text/plain"
    force = request.query.get("download", "").lower() in ("1", "t", "true")
    inline = not force and content_type.startswith(MEDIA_CONTENT_TYPES)
    name = quote(record.name, safe="")
    headers = {
        "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff",
        "Content-Type": content_type,
        "Content-Disposition": f"{'inline' if inline else 'attachment'};filename=\"{name}\"; "
                               f"filename*=UTF-8''{name}",
        "X-Frame-Options": "DENY", "Content-Security-Policy": "Frame-ancestors 'none'",
    }
    return web.Response(body=record.content, headers=headers)


async def get_file_info(request: web.Request) -> web.Response:
    record = _readable_file(request)
    return json_response(record.to_json(), headers={"Cache-Control": "max-age=2592000, private"})


def attach_files(state: State, post: Post) -> None:
    """attachFilesToPost for a post being created: keep the ids that attach, drop the others; the post
    then carries their FileInfos as metadata.files."""
    attached: list[str] = []
    for file_id in post.file_ids:
        record = files_of(state).get(file_id) if isinstance(file_id, str) else None
        if (record is None or record.post_id or record.user_id != post.user_id
                or record.channel_id != post.channel_id or file_id in attached):
            continue
        record.post_id = post.id
        attached.append(file_id)
    post.file_ids = attached
    post.files_metadata = [files_of(state)[f].to_json() for f in attached]


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v4/files", upload)
    r.add_get("/api/v4/files/{file_id}", get_file)
    r.add_get("/api/v4/files/{file_id}/info", get_file_info)
