"""Customer organisations: registration, profile changes and their cases."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID, uuid4

from fastapi import APIRouter, Path, Query, Request, Response

from api import schemas as s
from api import verifications
from api.deps import (
    Caller,
    CasebookApp,
    GuardedRoute,
    IdempotencyKey,
    NotifierApp,
    request_origin,
)
from api.routes.commanding import READ_RESPONSES, Runner, command_responses, etag, run
from api.verification_views import (
    CallerVerificationView,
    CallerVerifiedView,
    VerificationSentView,
)
from api.views import CasePageView, CommandAccepted, OrganisationView
from casebook import commands as c
from domain.organisations.errors import UnknownVerification
from domain.values import Actor, Channel, ContactKind

router = APIRouter(prefix="/organisations", tags=["organisations"], route_class=GuardedRoute)
ContactValue = Annotated[str, Query(max_length=254, pattern=r"^[^\x00]*$")]
AdminId = Annotated[str, Path(max_length=200, pattern=r"^[^\x00]*$")]


@router.post("", status_code=201, responses=command_responses(created=True))
async def register_organisation(
    body: s.RegisterOrganisationBody,
    caller: Caller,
    casebook: CasebookApp,
    response: Response,
    idempotency_key: IdempotencyKey,
) -> CommandAccepted:
    """Register a customer organisation with its first admins and contacts."""
    command = c.RegisterOrganisation(
        name=body.name,
        country=body.country,
        timezone=body.timezone,
        agreement=body.agreement,
        admins=tuple(body.admins),
        phones=tuple(body.phones),
        emails=tuple(body.emails),
        purchase_channel=body.purchase_channel,
        partner_name=body.partner_name,
        partner_contact=body.partner_contact,
    )
    return await run(
        casebook,
        command,
        caller,
        response,
        idempotency_key=idempotency_key,
        if_match=None,
        location="/organisations/{id}",
    )


@router.get("/{organisation_id}", responses=READ_RESPONSES)
def get_organisation(
    organisation_id: UUID, caller: Caller, casebook: CasebookApp, response: Response
) -> OrganisationView:
    """The organisation's current profile; its ETag is its version."""
    organisation = casebook.get_organisation(organisation_id)
    response.headers["ETag"] = etag(organisation.version)
    return OrganisationView.of(organisation)


@router.post("/{organisation_id}/admins", responses=command_responses())
async def add_organisation_admin(
    organisation_id: UUID,
    body: s.AdminBody,
    run_command: Runner,
) -> CommandAccepted:
    """Make a principal a customer admin of the organisation."""
    command = c.AddAdmin(organisation_id, body.principal_id)
    return await run_command(command, body)


@router.delete("/{organisation_id}/admins/{principal_id}", responses=command_responses())
async def remove_organisation_admin(
    organisation_id: UUID,
    principal_id: AdminId,
    run_command: Runner,
) -> CommandAccepted:
    """Remove a customer admin; the organisation's last admin stays."""
    command = c.RemoveAdmin(organisation_id, principal_id)
    return await run_command(command)


@router.post("/{organisation_id}/contacts", responses=command_responses())
async def register_organisation_contact(
    organisation_id: UUID,
    body: s.ContactBody,
    run_command: Runner,
) -> CommandAccepted:
    """Register a phone number or e-mail address in the organisation's profile."""
    command = c.RegisterContact(organisation_id, body.kind, body.value)
    return await run_command(command, body)


@router.delete("/{organisation_id}/contacts", responses=command_responses())
async def remove_organisation_contact(
    organisation_id: UUID,
    kind: ContactKind,
    value: ContactValue,
    run_command: Runner,
) -> CommandAccepted:
    """Remove a registered phone number or e-mail address (`?kind=email&value=...`)."""
    command = c.RemoveContact(organisation_id, kind, value)
    return await run_command(command)


@router.put("/{organisation_id}/agreement", responses=command_responses())
async def change_agreement(
    organisation_id: UUID,
    body: s.AgreementBody,
    run_command: Runner,
) -> CommandAccepted:
    """Switch between the standard and the advanced online-services agreement."""
    command = c.ChangeAgreement(organisation_id, body.agreement)
    return await run_command(command, body)


@router.put("/{organisation_id}/purchase-channel", responses=command_responses())
async def change_purchase_channel(
    organisation_id: UUID,
    body: s.PurchaseChannelBody,
    run_command: Runner,
) -> CommandAccepted:
    """Record whether the subscription was bought directly or through a partner."""
    command = c.ChangePurchaseChannel(
        organisation_id, body.purchase_channel, body.partner_name, body.partner_contact
    )
    return await run_command(command, body)


@router.put("/{organisation_id}/locale", responses=command_responses())
async def change_locale(
    organisation_id: UUID,
    body: s.LocaleBody,
    run_command: Runner,
) -> CommandAccepted:
    """Change the organisation's country and time zone (its customer calendar)."""
    command = c.ChangeLocale(organisation_id, body.country, body.timezone)
    return await run_command(command, body)


@router.post(
    "/{organisation_id}/caller-verifications",
    status_code=201,
    responses=command_responses(created=True),
)
async def request_caller_verification(
    organisation_id: UUID,
    body: s.CallerVerificationBody,
    caller: Caller,
    casebook: CasebookApp,
    notifier: NotifierApp,
    response: Response,
) -> VerificationSentView:
    """Send a one-time code for a caller on an unregistered number to a registered contact.

    The code goes to the organisation's registered e-mail or phone (policy §2), never to
    the client: the caller reads it back to the agent (`.../confirm`). It is valid for 10
    minutes and 5 attempts. A registered number needs no code (422
    `registered-callers-need-no-pin`); a notifier that cannot send answers 503
    `notification-delivered` and nothing is recorded. No Idempotency-Key: a retry sends
    a new code, and the older one simply expires.
    """
    command = c.RequestCallerVerification(
        organisation_id,
        uuid4(),
        body.caller_phone,
        verifications.new_code(casebook.policy.caller_verification),
        body.send_to,
    )
    sent = await verifications.send_code(casebook, notifier, command, _on_the_phone(caller))
    response.headers["ETag"] = etag(sent.version)
    response.headers["Location"] = (
        f"/organisations/{organisation_id}/caller-verifications/{sent.verification_id}"
    )
    return VerificationSentView(
        verification_id=sent.verification_id,
        channel=sent.channel,
        sent_to=sent.sent_to,
        expires_at=sent.expires_at,
        version=sent.version,
    )


@router.post(
    "/{organisation_id}/caller-verifications/{verification_id}/confirm",
    responses=command_responses(),
)
async def confirm_caller_verification(
    organisation_id: UUID,
    verification_id: UUID,
    body: s.VerificationCodeBody,
    caller: Caller,
    casebook: CasebookApp,
    response: Response,
) -> CallerVerifiedView:
    """Check the code the caller read back; then open their case with `verification_id`.

    A wrong code is recorded and refused (422 `verification-code-matches`, the attempts
    left in `detail`); the fifth locks the verification (409
    `verification-attempts-exhausted`), a code read back after 10 minutes expires it (409
    `verification-code-expired`), and a verified one cannot be confirmed again (409
    `verification-already-completed`).
    """
    command = c.ConfirmCallerVerification(organisation_id, verification_id, body.code)
    result = await verifications.check_code(casebook, command, _on_the_phone(caller))
    response.headers["ETag"] = etag(result.version)
    return CallerVerifiedView(verification_id=verification_id, version=result.version)


@router.get("/{organisation_id}/caller-verifications/{verification_id}", responses=READ_RESPONSES)
def get_caller_verification(
    organisation_id: UUID, verification_id: UUID, casebook: CasebookApp, response: Response
) -> CallerVerificationView:
    """Where a caller verification stands (pending, verified, used, locked, expired)."""
    organisation = casebook.get_organisation(organisation_id)
    found = organisation.verifications.get(verification_id)
    if found is None:
        raise UnknownVerification(
            f"No verification {verification_id} was requested for {organisation.name}."
        )
    response.headers["ETag"] = etag(organisation.version)
    return CallerVerificationView.of(verification_id, found)


def _on_the_phone(caller: Caller) -> c.CommandContext:
    # The agent verifies a caller during the call: the events say so (audit "where").
    actor = Actor(caller.principal_id, caller.role, Channel.PHONE)
    return c.CommandContext(actor=actor, origin=request_origin())


@router.get("/{organisation_id}/cases", responses=READ_RESPONSES)
def list_organisation_cases(
    organisation_id: UUID,
    caller: Caller,
    casebook: CasebookApp,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=200, description="Cases per page.")] = 50,
    after: Annotated[
        str | None,
        Query(max_length=200, pattern=r"^[A-Za-z0-9_=-]*$", description="A next_cursor."),
    ] = None,
) -> CasePageView:
    """The organisation's cases, oldest first, a page at a time (next link in `Link`)."""
    page = casebook.cases_of_organisation(organisation_id, limit=limit, after=after)
    next_url = None
    if page.next_cursor is not None:
        query = urlencode({"limit": limit, "after": page.next_cursor})
        next_url = f"{request.url.path}?{query}"
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return CasePageView.of(page, next_url)
