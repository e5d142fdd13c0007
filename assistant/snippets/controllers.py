"""HTTP for saved replies (SPEC 12): reviewers (and read keys) read them, admins write them."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from assistant.auth.guards import requires_scope, requires_user
from assistant.auth.principal import Principal
from assistant.services import Services
from assistant.snippets import service
from assistant.snippets.schemas import SnippetIn, SnippetOut, SnippetPatch


class SnippetController(Controller):
    path = "/api/v1/snippets"
    tags = ["snippets"]

    @get("/", operation_id="listSnippets", summary="The brand's saved replies, by name",
         dependencies={"principal": requires_scope("read")})
    async def list_all(self, principal: Principal, services: Services) -> list[SnippetOut]:
        return await services.db.run_read(service.list_snippets, principal.brand_id)

    @post("/", operation_id="createSnippet", status_code=HTTP_201_CREATED, summary="Save a reply (admins)",
          description="409 when the brand already has a saved reply of that name; 422 for an unknown placeholder.",
          dependencies={"principal": requires_user("admin")})
    async def create(self, data: SnippetIn, principal: Principal, services: Services) -> SnippetOut:
        return await services.db.run_write(service.create_snippet, principal.brand_id, data.name, data.text)

    @patch("/{snippet_id:int}", operation_id="updateSnippet", summary="Rename or rewrite a saved reply (admins)",
           dependencies={"principal": requires_user("admin")})
    async def update(self, snippet_id: int, data: SnippetPatch, principal: Principal, services: Services) -> SnippetOut:
        return await services.db.run_write(service.update_snippet, principal.brand_id, snippet_id, data.name, data.text)

    @delete("/{snippet_id:int}", operation_id="deleteSnippet", status_code=HTTP_204_NO_CONTENT,
            summary="Delete a saved reply (admins)", dependencies={"principal": requires_user("admin")})
    async def remove(self, snippet_id: int, principal: Principal, services: Services) -> None:
        await services.db.run_write(service.delete_snippet, principal.brand_id, snippet_id)
