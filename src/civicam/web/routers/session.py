"""Sign-in and sign-out pages: a password becomes the same token the API issues, kept in a strict cookie."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from civicam.api.deps import SESSION_COOKIE, client_address
from civicam.api.routers.auth import login_throttle, too_many
from civicam.audit.log import Actor, record
from civicam.auth.login import sign_in
from civicam.auth.users import revoke_token, user_for_token
from civicam.web.csrf import same_origin, valid
from civicam.web.pages import PageError, page_ctx, render, safe_next

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, None, next=safe_next(next), error=None, username="")


@router.post("/login")
def login_submit(request: Request, username: str = Form(""), password: str = Form(""),
                 next: str = Form("/")) -> Response:
    # Login CSRF: a sign-in form posted from another origin is refused (the browser sends Origin on POST).
    if not same_origin(request.headers.get("origin"), request.headers.get("host"), request.url.scheme):
        return render(request, "login.html", None, None, status_code=403, next="/", username="",
                      error="Sign-in from another site was refused.")
    ctx = page_ctx(request)
    source = client_address(request)
    with ctx.db.session() as s:
        # The same throttle as the API's sign-in: a throttled attempt costs no password hash and no audit row.
        signed = sign_in(s, login_throttle(request), username, password, source, ctx.settings.token_ttl_s,
                         {"via": "web"})
        if signed.token is None:
            msg = "Enter your username and password." if not (username and password) else \
                "Wrong username or password." if signed.retry_after_s is None else too_many(signed.retry_after_s).detail
            return render(request, "login.html", None, None, status_code=401 if signed.retry_after_s is None else 429,
                          next=safe_next(next), error=msg, username=username)
        token = signed.token
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=ctx.settings.token_ttl_s, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("")) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    if not token:
        return response
    if not valid(token, csrf_token) or not same_origin(request.headers.get("origin"), request.headers.get("host"),
                                                        request.url.scheme):
        raise PageError(403, "Sign-out refused", "The sign-out form was stale or came from another site; "
                        "reload the page and sign out again.")
    with page_ctx(request).db.session() as s:
        user = user_for_token(s, token)
        if user is not None and revoke_token(s, token):
            record(s, Actor(name=user.username, source=client_address(request), role=user.role), "auth.logout",
                   "user", user.id, {"via": "web"})
    return response
