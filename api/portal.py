"""The customer portal: one key that acts, per request, for one customer admin.

The portal signs its customers in itself and names the admin it acts for in
`Casebook-On-Behalf-Of`. casebook then treats the request as that admin's, online: the
commands it sends record the admin as the actor and the portal's key as the origin, so
the audit trail names both. The admin must be registered with the organisation the
request touches; for anything else the answer is exactly what a made-up id gets (404
for a case or an organisation in the path, the policy's refusal for an opening), so a
portal request can never tell another organisation's objects from ones that do not exist.
"""

from __future__ import annotations

import re
from dataclasses import replace
from uuid import UUID

from fastapi import Request

from api.keys import Principal
from api.schemas import CustomerChannel, OpenCaseBody
from casebook.application import Casebook
from casebook.errors import CaseNotFound, OrganisationNotFound
from domain.cases.errors import RequesterNotAdmin
from domain.errors import DomainError
from domain.values import Role

ON_BEHALF_OF = "Casebook-On-Behalf-Of"
# A customer principal id as the organisations register them: printable, no spaces.
_PRINCIPAL = re.compile(r"^[\x21-\x7e]{1,200}$")
NOT_AN_ADMIN = (
    "Only customer administrators can open service requests for their organisation: ask "
    "your organisation's administrator, or use the community forums."
)


class OnBehalfOfInvalid(DomainError):
    """A portal request names the one customer admin it acts for."""

    rule = "portal-acts-for-one-customer"
    field = f"header.{ON_BEHALF_OF}"


class OnBehalfOfNotAllowed(DomainError):
    """Only the portal's keys act on behalf of a customer."""

    rule = "only-the-portal-acts-for-customers"
    field = f"header.{ON_BEHALF_OF}"


class PortalOpensOnline(DomainError):
    """The customer portal is the online channel."""

    rule = "portal-opens-online"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class PortalOpensForItsCustomer(PortalOpensOnline):
    """The portal opens a request for the admin it acts for, not for another."""

    rule = "portal-opens-for-its-customer"


def acting_principal(request: Request, principal: Principal) -> Principal:
    """`principal`, acting for the customer its request names when it is the portal's."""
    named = request.headers.getlist(ON_BEHALF_OF)
    if principal.role is not Role.PORTAL:
        if named:
            raise OnBehalfOfNotAllowed(
                f"{ON_BEHALF_OF} is for the customer portal's keys; {principal.role.value} "
                "keys act as themselves."
            )
        return principal
    if len(named) != 1 or not _PRINCIPAL.match(named[0]):
        raise OnBehalfOfInvalid(
            f"Send {ON_BEHALF_OF} once, with the id of the signed-in customer admin "
            "(1-200 visible ASCII characters)."
        )
    return replace(principal, on_behalf_of=named[0])


def check_scope(casebook: Casebook, customer: str, path: dict[str, object]) -> None:
    """Refuse, as if it did not exist, a case or organisation of the path that `customer`
    is not an admin of. Ids that are not UUIDs are left to request validation (422)."""
    case_id = _uuid(path.get("case_id"))
    if case_id is not None:
        case = casebook.get_case(case_id)
        if not casebook.get_organisation(case.organisation_id).is_admin(customer):
            raise CaseNotFound(case_id)
    organisation_id = _uuid(path.get("organisation_id"))
    if organisation_id is not None and not casebook.get_organisation(organisation_id).is_admin(
        customer
    ):
        raise OrganisationNotFound(organisation_id)


def check_opening_body(casebook: Casebook, customer: str, body: OpenCaseBody) -> None:
    """Refuse an opening the portal may not send for `customer`.

    Not an admin of the organisation named: the policy's refusal, in the same words
    whether the organisation exists or not (the body names it, and the answer must not
    tell the portal which ids exist). The portal opens online, for the admin it acts for.
    """
    try:
        admin = casebook.get_organisation(body.organisation_id).is_admin(customer)
    except OrganisationNotFound:
        admin = False
    if not admin:
        raise RequesterNotAdmin(NOT_AN_ADMIN)
    if body.channel is not CustomerChannel.ONLINE:
        raise PortalOpensOnline(
            "The customer portal opens requests online: send channel `online`.", "body.channel"
        )
    if body.requester_id != customer:
        raise PortalOpensForItsCustomer(
            f"The portal acts for {customer} in this request: the requester must be {customer}.",
            "body.requester_id",
        )


def _uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value is not None else None
    except ValueError:
        return None
