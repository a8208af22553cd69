"""An Open311 GeoReport v2 client written from the specification alone (http://wiki.open311.org/GeoReport_v2):
it knows the paths, the arguments and the two formats' shapes, nothing of Fangan. Each call returns what the
spec says the answer holds, as plain Python, read from JSON or from the XML elements the spec names."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


class GeoReportError(Exception):
    """An answer in the spec's error format: [{"code": …, "description": …}] or <errors><error>…."""

    def __init__(self, status: int, errors: list[dict[str, Any]], headers: dict[str, str]):
        super().__init__(f"{status}: {errors}")
        self.status, self.errors, self.headers = status, errors, headers


@dataclass
class GeoReportClient:
    http: Any  # anything with .get(url) and .post(url, data=…, content_type=…) answering status, headers, data
    base: str  # the endpoint's url, from discovery (e.g. /open311/v2)
    fmt: str = "json"
    jurisdiction_id: str | None = None
    api_key: str | None = None

    # -- the spec's methods --------------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        answer = self._get(f"{self.base}/discovery.{self.fmt}", {})
        if self.fmt == "json":
            return answer
        endpoints = [{**self._fields(e, ("specification", "url", "changeset", "type")),
                      "formats": [f.text for f in _children(e, "formats")]} for e in _children(answer, "endpoints")]
        return {**self._fields(answer, ("changeset", "contact", "key_service")), "endpoints": endpoints}

    def services(self) -> list[dict[str, Any]]:
        answer = self._get(f"{self.base}/services.{self.fmt}", self._common())
        if self.fmt == "json":
            return answer
        return [self._typed(self._fields(s, ("service_code", "service_name", "description", "metadata", "type",
                                              "keywords", "group"))) for s in answer.findall("service")]

    def service_definition(self, service_code: str) -> dict[str, Any]:
        answer = self._get(f"{self.base}/services/{service_code}.{self.fmt}", self._common())
        if self.fmt == "json":
            return answer
        attributes = [self._typed(self._fields(a, ("variable", "code", "datatype", "required", "datatype_description",
                                                   "order", "description")))
                      for a in _children(answer, "attributes")]
        return {"service_code": answer.findtext("service_code"), "attributes": attributes}

    def post_service_request(self, service_code: str, **arguments: Any) -> list[dict[str, Any]]:
        """POST Service Request: `attribute` is a dict of the service's attributes."""
        attributes = arguments.pop("attribute", {}) or {}
        body = {**self._common(), "service_code": service_code, **{k: v for k, v in arguments.items() if v is not None}}
        if self.api_key:
            body["api_key"] = self.api_key
        pairs = list(body.items()) + [(f"attribute[{k}]", v) for k, v in attributes.items()]
        answer = self._send("post", f"{self.base}/requests.{self.fmt}", urlencode(pairs))
        return self._requests(answer, ("service_request_id", "token", "service_notice", "account_id"))

    def get_service_requests(self, **filters: Any) -> list[dict[str, Any]]:
        answer = self._get(f"{self.base}/requests.{self.fmt}", {**self._common(), **filters})
        return self._requests(answer, REQUEST_FIELDS)

    def get_service_request(self, service_request_id: str) -> list[dict[str, Any]]:
        answer = self._get(f"{self.base}/requests/{service_request_id}.{self.fmt}", self._common())
        return self._requests(answer, REQUEST_FIELDS)

    def get_request_id_from_token(self, token: str) -> list[dict[str, Any]]:
        answer = self._get(f"{self.base}/tokens/{token}.{self.fmt}", self._common())
        return self._requests(answer, ("service_request_id", "token"))

    def raw(self, method: str, path: str, body: str = "") -> Any:
        """Any method on any path of the endpoint (for what the spec says about errors)."""
        return self._send(method, f"{self.base}/{path}", body)

    # -- the two formats -----------------------------------------------------------------------------------------

    def _common(self) -> dict[str, str]:
        return {"jurisdiction_id": self.jurisdiction_id} if self.jurisdiction_id else {}

    def _get(self, url: str, query: dict[str, Any]) -> Any:
        return self._send("get", url + ("?" + urlencode(query) if query else ""))

    def _send(self, method: str, url: str, body: str | None = None) -> Any:
        if method == "get":
            response = self.http.get(url)
        else:
            response = getattr(self.http, method)(url, data=body or "",
                                                  content_type="application/x-www-form-urlencoded")
        text = response.data
        if response.status_code >= 300:
            if self.fmt == "json":
                errors = response.get_json()
            else:
                root = ET.fromstring(text)  # noqa: S314 - a test's own server
                assert root.tag == "errors", text
                errors = [{"code": int(e.findtext("code")), "description": e.findtext("description")}
                          for e in root.findall("error")]
            raise GeoReportError(response.status_code, errors, dict(response.headers))
        if self.fmt == "json":
            assert response.mimetype == "application/json", response.mimetype
            return response.get_json()
        assert response.mimetype == "text/xml" and text.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
        return ET.fromstring(text)  # noqa: S314

    def _requests(self, answer: Any, fields: tuple[str, ...]) -> list[dict[str, Any]]:
        if self.fmt == "json":
            return answer
        assert answer.tag == "service_requests"
        return [self._typed(self._fields(r, fields)) for r in answer.findall("request")]

    @staticmethod
    def _fields(node: ET.Element, names: tuple[str, ...]) -> dict[str, Any]:
        return {name: node.findtext(name) or None for name in names if node.find(name) is not None}

    @staticmethod
    def _typed(row: dict[str, Any]) -> dict[str, Any]:
        """XML carries text: the spec's booleans, numbers and coordinates as JSON would give them."""
        for key in ("metadata", "variable", "required"):
            if key in row:
                row[key] = row[key] == "true"
        for key in ("lat", "long"):
            if row.get(key) is not None:
                row[key] = float(row[key])
        if row.get("order") is not None:
            row["order"] = int(row["order"])
        return row


def _children(node: ET.Element, name: str) -> list[ET.Element]:
    found = node.find(name)
    return list(found) if found is not None else []


REQUEST_FIELDS = ("service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url")
