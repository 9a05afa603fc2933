"""What the satisfaction survey invitation says (§6): which case, and how to answer.

It names the case by its id and its title (the customer's own words) and points to the
portal; never an internal note or the resolution text.
"""

from __future__ import annotations

from uuid import UUID


def invitation_subject(case_id: UUID) -> str:
    """The subject line of a case's survey invitation."""
    return f"How did we do? Case {case_id} is resolved"


def invitation_text(case_id: UUID, title: str) -> str:
    """The body of a case's survey invitation: the case and how to answer, once."""
    return (
        f'Your service request "{title}" (case {case_id}) has been resolved. Please tell '
        "us how satisfied you are: sign in to the customer portal, open the case and "
        "answer its satisfaction survey with a score from 1 (very dissatisfied) to 5 "
        "(very satisfied) and, if you like, a comment. The case takes one answer. If the "
        "problem is not solved, reopen the case in the portal."
    )
