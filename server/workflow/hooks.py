"""Outbound notification hooks (SMS or WeChat gateways): a registry, off by default.

Notifications are written in the same transaction as the action that caused them; `fangan tick`
delivers the undelivered ones afterwards, so a slow or failing gateway never blocks or undoes an action.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

# name -> function(config, payload) raising on failure
HOOKS: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {}


def hook(name: str) -> Callable:
    def register(fn: Callable[[dict[str, Any], dict[str, Any]], None]) -> Callable:
        HOOKS[name] = fn
        return fn

    return register


@hook("webhook")
def post_json(config: dict[str, Any], payload: dict[str, Any]) -> None:
    """POST the notification as JSON to FANGAN_NOTIFY_WEBHOOK_URL (a gateway the district runs)."""
    url = config["FANGAN_NOTIFY_WEBHOOK_URL"]
    if not url.startswith(("http://", "https://")):
        raise ValueError("the webhook URL must be http(s)")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=json.dumps(payload, ensure_ascii=False).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json; charset=utf-8",
                 "Authorization": f"Bearer {config.get('FANGAN_NOTIFY_WEBHOOK_TOKEN', '')}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        if response.status >= 300:
            raise RuntimeError(f"webhook answered {response.status}")


def active_hooks(config: dict[str, Any]) -> list[str]:
    """Hooks switched on by configuration (none unless a URL is set)."""
    return ["webhook"] if config.get("FANGAN_NOTIFY_WEBHOOK_URL") else []
