"""Service incidents: what the service health dashboard shows before a request is filed."""

from domain.incidents.aggregate import ServiceIncident
from domain.incidents.rules import IncidentAnswer, incident_to_link

__all__ = ["IncidentAnswer", "ServiceIncident", "incident_to_link"]
