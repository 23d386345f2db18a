"""Reports built from the stored events (attempts, call and agent events, gate
refusals), never from counters kept on the side.  Every function is a pure async
query on a connection and returns dataclasses or dicts ready to serve as JSON."""

from dialer.reports.abandonment import (
    DEFINITION,
    AbandonedCall,
    Abandonment,
    Window,
    abandonment,
    last_activity,
)
from dialer.reports.agents import AgentRow, agent_performance
from dialer.reports.attempts import COLUMNS as ATTEMPT_COLUMNS
from dialer.reports.attempts import attempt_history, write_csv, write_csv_file
from dialer.reports.breakdowns import dispositions, refusals
from dialer.reports.common import (
    CampaignInfo,
    Period,
    ReportError,
    parse_interval,
    parse_time,
    zone_of,
)
from dialer.reports.results import Figures, IntervalRow, Summary, intervals, summary

__all__ = [
    "ATTEMPT_COLUMNS",
    "DEFINITION",
    "AbandonedCall",
    "Abandonment",
    "AgentRow",
    "CampaignInfo",
    "Figures",
    "IntervalRow",
    "Period",
    "ReportError",
    "Summary",
    "Window",
    "abandonment",
    "agent_performance",
    "attempt_history",
    "dispositions",
    "intervals",
    "last_activity",
    "parse_interval",
    "parse_time",
    "refusals",
    "summary",
    "write_csv",
    "write_csv_file",
    "zone_of",
]
