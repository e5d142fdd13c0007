"""HTTP for reviewer tokens: a user lists and revokes their own; an admin, every one of their brand's."""

from __future__ import annotations

from typing import Annotated, Protocol

from litestar import Controller, get, post
from litestar.params import Dependency, Parameter
from litestar.status_codes import HTTP_200_OK

from assistant.auth.guards import requires_user
from assistant.auth.principal import Principal
from assistant.auth.reviewer_tokens import TokenOut, list_tokens, revoke_token
from assistant.auth.service import Authenticator
from assistant.db import Database

Prefix = Annotated[str, Parameter(pattern=r"^[a-z]{2}_[0-9a-f]{1,32}$", max_length=40,
                                    description="The token's prefix, as listed (`rt_` and hex digits)")]


class TokenServices(Protocol):
    """What these handlers use of the app's ``services`` dependency (``assistant.services.Services`` sits above
    this package, so it is named here by shape, as the guards do)."""

    @property
    def db(self) -> Database: ...

    @property
    def authenticator(self) -> Authenticator: ...


Services = Annotated[TokenServices, Dependency(skip_validation=True)]


class ReviewerTokenController(Controller):
    path = "/api/v1/reviewer-tokens"
    tags = ["reviewer tokens"]

    @get("/", operation_id="listReviewerTokens", dependencies={"principal": requires_user()},
         summary="Reviewer tokens: your own, or (admins) every one of the brand; prefixes only")
    async def list(self, principal: Principal, services: Services) -> list[TokenOut]:
        return await services.db.run_read(list_tokens, principal.brand_id,
                                       None if principal.is_admin else principal.label)

    @post("/{prefix:str}/revoke", operation_id="revokeReviewerToken", dependencies={"principal": requires_user()},
          status_code=HTTP_200_OK, summary="Revoke a reviewer token; it stops working at once")
    async def revoke(self, prefix: Prefix, principal: Principal, services: Services) -> dict[str, str]:
        await services.db.run_write(revoke_token, prefix, principal.brand_id, principal,
                                 None if principal.is_admin else principal.id)
        services.authenticator.forget()
        return {"prefix": prefix, "status": "revoked"}
