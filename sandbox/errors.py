"""The real server's error body (model.AppError) and the ids the sandbox uses."""
from __future__ import annotations

from dataclasses import dataclass

MESSAGES = {
    "api.context.session_expired.app_error": "Invalid or expired session, please login again.",
    "api.context.token_provided.app_error": "Session is not OAuth but token was provided in the query string.",
    "api.context.permissions.app_error": "You do not have the appropriate permissions.",
    "api.context.invalid_body_param.app_error": "Invalid or missing {name} in request body.",
    "api.context.invalid_url_param.app_error": "Invalid or missing {name} parameter in request URL.",
    "api.context.404.app_error": "Sorry, we could not find the page.",
}


@dataclass
class AppError(Exception):
    """Raised anywhere in a handler; the middleware turns it into the real JSON body."""

    id: str
    status_code: int
    message: str = ""
    detailed_error: str = ""

    def __post_init__(self) -> None:
        if not self.message:
            self.message = MESSAGES.get(self.id, self.id)

    def body(self, request_id: str) -> dict:
        return {
            "id": self.id,
            "message": self.message,
            "detailed_error": self.detailed_error,
            "request_id": request_id,
            "status_code": self.status_code,
        }


def invalid_body(name: str) -> AppError:
    return AppError(
        "api.context.invalid_body_param.app_error", 400,
        MESSAGES["api.context.invalid_body_param.app_error"].format(name=name),
    )


def invalid_url(name: str) -> AppError:
    return AppError(
        "api.context.invalid_url_param.app_error", 400,
        MESSAGES["api.context.invalid_url_param.app_error"].format(name=name),
    )


def forbidden(permission: str = "", user_id: str = "") -> AppError:
    detail = f"userId={user_id}, permission={permission}" if permission else ""
    return AppError("api.context.permissions.app_error", 403, detailed_error=detail)


def session_expired() -> AppError:
    return AppError("api.context.session_expired.app_error", 401)
