"""The project routes: GET/POST /projects, GET/PATCH/DELETE /projects/{id}, on the same
domain calls as GraphQL's projects, createProject, updateProject and deleteProject."""

from __future__ import annotations

from starlette.responses import Response

from graphql_api.domain import rules
from graphql_api.errors import ProjectNotFoundError
from graphql_api.storage.records import UNSET

from . import bodies, render
from .endpoint import PAGE, Call, Operation, Param, page_window
from .errors import PROJECTS_PREFIX, json_response

PROJECT_ID = Param(
    name="id", type="string", location="path", format="uuid", description="The project."
)


async def list_projects(call: Call) -> Response:
    chat = call.chat
    window = page_window(call, chat.project_window)
    page = await chat.list_projects(window)
    next_cursor = (
        chat.cursors.project(page.items[-1].position) if page.has_next and page.items else None
    )
    return json_response(
        {"projects": [render.project(record) for record in page.items], "nextCursor": next_cursor}
    )


async def create_project(call: Call) -> Response:
    body = call.body
    record = await call.chat.create_project(
        project_id=body["id"], name=body["name"], instructions=body.get("instructions")
    )
    location = f"{call.url_path.rstrip('/')}/{record.id}"
    return json_response(render.project(record), 201, headers={"Location": location})


async def get_project(call: Call) -> Response:
    (record,) = await call.chat.get_projects([rules.uuid_id(call.path["id"], field="id")])
    if record is None:
        raise ProjectNotFoundError("project not found")
    return json_response(render.project(record))


async def update_project(call: Call) -> Response:
    body = call.body
    record = await call.chat.update_project(
        project_id=call.path["id"],
        name=body.get("name", UNSET),
        instructions=body.get("instructions", UNSET),
        expected_version=body.get("expectedVersion"),
    )
    return json_response(render.project(record))


async def delete_project(call: Call) -> Response:
    deletion = await call.chat.delete_project(
        project_id=call.path["id"],
        delete_conversations=call.query.get("deleteConversations", False),
    )
    return json_response(
        {"done": deletion.done, "conversationsRemaining": deletion.conversations_remaining}
    )


_ONE = f"{PROJECTS_PREFIX}/{{id}}"

PROJECT_OPERATIONS = (
    Operation(
        method="GET",
        path=PROJECTS_PREFIX,
        operation_id="listProjects",
        summary="The caller's projects, most recently updated first.",
        handler=list_projects,
        params=PAGE,
        status=200,
        response=bodies.PROJECT_PAGE,
        errors=(400,),
    ),
    Operation(
        method="POST",
        path=PROJECTS_PREFIX,
        operation_id="createProject",
        summary="Create a project.",
        description=(
            "Idempotent by its client-chosen `id`: the same id again answers 201 with the "
            "project as stored. The id of one of the caller's conversations is 409; past "
            "MAX_PROJECTS_PER_USER projects, 400."
        ),
        handler=create_project,
        body=bodies.NEW_PROJECT,
        status=201,
        response=bodies.PROJECT,
        errors=(400, 409),
        headers={"Location": "The project's path."},
    ),
    Operation(
        method="GET",
        path=_ONE,
        operation_id="getProject",
        summary="A project, with how many conversations it holds.",
        handler=get_project,
        params=(PROJECT_ID,),
        status=200,
        response=bodies.PROJECT,
        errors=(400, 404),
    ),
    Operation(
        method="PATCH",
        path=_ONE,
        operation_id="updateProject",
        summary="Rename a project and/or change its instructions.",
        handler=update_project,
        params=(PROJECT_ID,),
        body=bodies.PROJECT_CHANGES,
        status=200,
        response=bodies.PROJECT,
        errors=(400, 404, 409),
    ),
    Operation(
        method="DELETE",
        path=_ONE,
        operation_id="deleteProject",
        summary="Delete a project, a bounded amount per call: call again until done.",
        description=(
            "Its conversations move out of it (to no project), or with "
            "`deleteConversations=true` are deleted with their messages. From the first call "
            "on the project is gone for every reader and nothing can move in; once done, its "
            "id is 404."
        ),
        handler=delete_project,
        params=(
            PROJECT_ID,
            Param(
                name="deleteConversations",
                type="boolean",
                description="true: delete its conversations too; default false.",
            ),
        ),
        status=200,
        response=bodies.PROJECT_DELETION,
        errors=(400, 404),
    ),
)
