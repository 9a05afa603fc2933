"""Business calendars: when the support clock runs, and why."""

from domain.calendars.calendar import BusinessCalendar, DayRule
from domain.calendars.holidays import HolidaySource

__all__ = ["BusinessCalendar", "DayRule", "HolidaySource"]
