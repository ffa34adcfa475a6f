"""Local stand-ins for the tools playbook actions reach (Jira Cloud, Zoom, PagerDuty, Opsgenie), as sandbox/
is for Mattermost: small aiohttp servers that follow each vendor's published contract (docs/standins.md says
which spec version each follows and where it is kinder or stricter). Tests and `make run` use them; the
product never imports them."""
from standins.jira import JiraStandIn
from standins.opsgenie import OpsgenieStandIn
from standins.pagerduty import PagerDutyStandIn, send_webhook, sign_webhook
from standins.zoom import ZoomStandIn

__all__ = ["JiraStandIn", "ZoomStandIn", "PagerDutyStandIn", "OpsgenieStandIn", "send_webhook", "sign_webhook"]
