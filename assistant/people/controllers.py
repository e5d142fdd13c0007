"""HTTP for people and their history (SPEC section 5)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter

from assistant.auth.guards import requires_admin, requires_scope, requires_user
from assistant.auth.principal import Principal
from assistant.pagination import Cursor, Limit, Page
from assistant.people import privacy, service
from assistant.people.schemas import (Erasure, HistoryItem, MergeIn, NoteIn, NoteOut, PersonExport, PersonOut,
                                      PersonPatch)
from assistant.services import Services

PersonId = Annotated[int, Parameter(ge=1, le=2**63 - 1)]
"""A person's id as the database can hold it: anything else is a 400, never a failed lookup."""


class PeopleController(Controller):
    path = "/api/v1/people"
    tags = ["people"]

    @get("/", operation_id="listPeople", dependencies={"principal": requires_scope("read")},
         summary="Find people by platform and handle")
    async def list_people(self, principal: Principal, services: Services,
                          platform: Annotated[str | None, Parameter(max_length=32)] = None,
                          handle: Annotated[str | None, Parameter(max_length=200)] = None,
                          limit: Limit = 50, cursor: Cursor = None) -> Page[PersonOut]:
        return await service.find_people(services.db, principal.brand_id, platform=platform, handle=handle,
                                         limit=limit, cursor=cursor)

    @get("/{person_id:int}", operation_id="getPerson", dependencies={"principal": requires_scope("read")})
    async def get_person(self, person_id: int, principal: Principal, services: Services) -> PersonOut:
        return await service.get_person(services.db, principal.brand_id, person_id)

    @get("/{person_id:int}/history", operation_id="getPersonHistory",
         dependencies={"principal": requires_scope("read")},
         summary="Messages both ways and notes, newest first")
    async def history(self, person_id: int, principal: Principal, services: Services, limit: Limit = 50,
                      cursor: Cursor = None) -> Page[HistoryItem]:
        return await service.history(services.db, principal.brand_id, person_id, limit=limit, cursor=cursor)

    @patch("/{person_id:int}", operation_id="updatePerson", dependencies={"principal": requires_user()})
    async def update(self, person_id: int, data: PersonPatch, principal: Principal, services: Services) -> PersonOut:
        return await service.update_person(services.db, principal, person_id, display_name=data.display_name,
                                           do_not_reply=data.do_not_reply)

    @post("/{person_id:int}/notes", operation_id="addPersonNote", dependencies={"principal": requires_user()})
    async def add_note(self, person_id: int, data: NoteIn, principal: Principal, services: Services) -> NoteOut:
        return await service.add_note(services.db, principal, person_id, data.text)

    @post("/{person_id:int}/merge", operation_id="mergePeople", dependencies={"principal": requires_user("admin")},
          status_code=200)
    async def merge(self, person_id: int, data: MergeIn, principal: Principal, services: Services) -> PersonOut:
        return await service.merge_people(services.db, principal, person_id, data.other_id)

    @get("/{person_id:int}/export", operation_id="exportPerson", dependencies={"principal": requires_admin()},
         summary="Everything held about a person, as JSON (a privacy request)")
    async def export(self, person_id: PersonId, principal: Principal, services: Services) -> PersonExport:
        return await privacy.export_person(services.db, principal, person_id)

    @delete("/{person_id:int}", operation_id="erasePerson", dependencies={"principal": requires_admin()},
            status_code=202, summary="Erase a person everywhere (a privacy request); the id answers 404 afterwards")
    async def erase(self, person_id: PersonId, principal: Principal, services: Services) -> Erasure:
        return await privacy.erase_person(services.db, principal, person_id)
