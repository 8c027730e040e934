"""python3-saml (OneLogin) as a real SP peer, in strict mode, wanting signed messages and assertions."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants as K
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp.saml.config import IdpConfig

SP_ENTITY_ID = "https://lms.uni.example/saml/metadata"
SP_HOST = "lms.uni.example"
ACS_PATH = "/saml/acs"
SLS_PATH = "/saml/sls"


@dataclass
class OneLoginSP:
    settings_dict: dict
    idp_post_url: str

    @classmethod
    def create(
        cls,
        idp: IdpConfig,
        sp_keys: tuple[bytes, bytes],
        *,
        sign_requests: bool = True,
        want_encrypted: bool = False,
        requested_authn_context: list[str] | bool = False,
    ) -> OneLoginSP:
        key_pem, cert_pem = sp_keys
        return cls(
            {
                "strict": True,
                "debug": False,
                "sp": {
                    "entityId": SP_ENTITY_ID,
                    "assertionConsumerService": {
                        "url": f"https://{SP_HOST}{ACS_PATH}",
                        "binding": K.BINDING_HTTP_POST,
                    },
                    "singleLogoutService": {
                        "url": f"https://{SP_HOST}{SLS_PATH}",
                        "binding": K.BINDING_HTTP_REDIRECT,
                    },
                    "NameIDFormat": K.NAMEID_TRANSIENT,
                    "x509cert": cert_pem.decode(),
                    "privateKey": key_pem.decode(),
                },
                "idp": {
                    "entityId": idp.entity_id,
                    "singleSignOnService": {"url": idp.sso_redirect_url, "binding": K.BINDING_HTTP_REDIRECT},
                    "singleLogoutService": {"url": idp.slo_redirect_url, "binding": K.BINDING_HTTP_REDIRECT},
                    "x509cert": idp.signing.cert_pem.decode(),
                },
                "security": {
                    "authnRequestsSigned": sign_requests,
                    "logoutRequestSigned": True,
                    "logoutResponseSigned": True,
                    "wantMessagesSigned": True,
                    "wantAssertionsSigned": True,
                    "wantAssertionsEncrypted": want_encrypted,
                    "wantNameId": True,
                    "requestedAuthnContext": requested_authn_context,
                    "signatureAlgorithm": K.RSA_SHA256,
                    "digestAlgorithm": K.SHA256,
                    "rejectDeprecatedAlgorithm": True,
                },
            },
            idp.sso_post_url,
        )

    @property
    def settings(self) -> OneLogin_Saml2_Settings:
        return OneLogin_Saml2_Settings(self.settings_dict, sp_validation_only=False)

    def metadata(self) -> bytes:
        md = self.settings.get_sp_metadata()
        return md if isinstance(md, bytes) else md.encode()

    def _request_data(self, path: str, get: dict | None = None, post: dict | None = None) -> dict:
        return {
            "https": "on",
            "http_host": SP_HOST,
            "script_name": path,
            "get_data": get or {},
            "post_data": post or {},
        }

    def redirect_authn_request(self, **kwargs: object) -> tuple[str, str]:
        """(request id, raw query string) of an AuthnRequest sent over HTTP-Redirect."""
        auth = OneLogin_Saml2_Auth(self._request_data("/login"), self.settings_dict)
        url = auth.login(return_to="https://lms.uni.example/course/7", **kwargs)
        return auth.get_last_request_id(), url.split("?", 1)[1]

    def post_authn_request(self, *, sign: bool) -> tuple[str, dict[str, str]]:
        """(request id, form fields) of an AuthnRequest sent over HTTP-POST, enveloped-signed if asked."""
        # python3-saml sets Destination to the IdP SSO URL it knows; point it at the POST endpoint.
        settings_dict = {**self.settings_dict, "idp": {**self.settings_dict["idp"]}}
        settings_dict["idp"]["singleSignOnService"] = {
            "url": self.idp_post_url,
            "binding": K.BINDING_HTTP_POST,
        }
        settings = OneLogin_Saml2_Settings(settings_dict)
        request = OneLogin_Saml2_Authn_Request(settings)
        xml = request.get_xml()
        if sign:
            sp = self.settings_dict["sp"]
            xml = OneLogin_Saml2_Utils.add_sign(
                xml, sp["privateKey"], sp["x509cert"], sign_algorithm=K.RSA_SHA256, digest_algorithm=K.SHA256
            )
        if isinstance(xml, str):
            xml = xml.encode()
        return request.get_id(), {"SAMLRequest": base64.b64encode(xml).decode(), "RelayState": "rs-post"}

    def accept_response(self, saml_response_b64: str, request_id: str | None) -> OneLogin_Saml2_Response:
        """Validate as the SP would at its ACS; raise AssertionError with python3-saml's reason if refused."""
        response = OneLogin_Saml2_Response(self.settings, saml_response_b64)
        ok = response.is_valid(self._request_data(ACS_PATH, post={"SAMLResponse": saml_response_b64}), request_id)
        if not ok:
            raise AssertionError(f"python3-saml refused the response: {response.get_error()}")
        return response

    def logout_request(self, name_id: str, session_index: str) -> tuple[str, str]:
        """(request id, raw query) of a signed LogoutRequest over HTTP-Redirect."""
        auth = OneLogin_Saml2_Auth(self._request_data("/logout"), self.settings_dict)
        url = auth.logout(
            return_to="https://lms.uni.example/bye",
            name_id=name_id,
            session_index=session_index,
            name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
        )
        return auth.get_last_request_id(), url.split("?", 1)[1]

    def accept_logout_response(self, raw_query: str, get: dict[str, str], request_id: str) -> None:
        response = OneLogin_Saml2_Logout_Response(self.settings, get["SAMLResponse"])
        data = self._request_data(SLS_PATH, get=get)
        data["query_string"] = raw_query
        data["validate_signature_from_qs"] = True
        if not response.is_valid(data, request_id, raise_exceptions=False):
            raise AssertionError(f"python3-saml refused the LogoutResponse: {response.get_error()}")

    def accept_logout_request(self, raw_query: str, get: dict[str, str]) -> None:
        request = OneLogin_Saml2_Logout_Request(self.settings, get["SAMLRequest"])
        data = self._request_data(SLS_PATH, get=get)
        data["query_string"] = raw_query
        data["validate_signature_from_qs"] = True
        if not request.is_valid(data, raise_exceptions=False):
            raise AssertionError(f"python3-saml refused the LogoutRequest: {request.get_error()}")

    def answer_logout_request(self, raw_query: str, get: dict[str, str]) -> str:
        """Process an IdP LogoutRequest as the SP's SLS does; return the URL carrying its LogoutResponse."""
        data = self._request_data(SLS_PATH, get=get)
        data["query_string"] = raw_query
        data["validate_signature_from_qs"] = True
        auth = OneLogin_Saml2_Auth(data, self.settings_dict)
        url = auth.process_slo(keep_local_session=True)
        if auth.get_errors():
            raise AssertionError(f"python3-saml refused the LogoutRequest: {auth.get_last_error_reason()}")
        return url
