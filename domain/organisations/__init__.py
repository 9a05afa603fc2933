"""Customer organisations: admins, contacts, agreement, locale and caller PIN checks."""

from domain.organisations.aggregate import Organisation
from domain.organisations.profile import PurchaseChannel
from domain.organisations.verification import CallerVerification, VerificationOutcome

__all__ = ["CallerVerification", "Organisation", "PurchaseChannel", "VerificationOutcome"]
