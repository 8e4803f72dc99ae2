"""The one secret mask. Every output path (human text, --json, logs, the install record,
dry-run command lines) passes what it shows through here, so a credential a user typed
into a mirror URL, a flag or the environment never reaches a screen, a file or a bug
report. Pure: no I/O beyond reading os.environ for the values of secret-named variables.

Masked:
- URL userinfo of any form (`https://user:pw@host`, `https://ghp_token@host`);
- well-known token shapes (GitHub, Hugging Face, OpenAI-style `sk-`, Civitai keys in query
  strings, `Authorization:` headers);
- the value after credential flags (`--gradio-auth`, `--api-auth`, `--*-token`, `--*-key`,
  `--*-password`, also `--flag=value`);
- `NAME=value` where NAME looks secret (`*_TOKEN`, `*_KEY`, `*PASSWORD*`, `*SECRET*`...);
- the literal value of every secret-named variable in the environment (HF_TOKEN=hf_...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MASK = "***"

SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|_KEY$|^KEY$|AUTH|CREDENTIAL|COOKIE",
    re.IGNORECASE)
# flags whose next argument (or =value) is a credential
SECRET_FLAG = re.compile(
    r"^--?(gradio-auth|api-auth|[\w-]*token|[\w-]*api-key|[\w-]*password|[\w-]*secret"
    r"|ngrok|cloudflared-token|hf-token|civitai-key)$", re.IGNORECASE)
# files given to --gradio-auth-path are paths, not secrets: keep them visible
_NOT_SECRET_FLAG = re.compile(r"-path$|-file$", re.IGNORECASE)

# up to the last @ of the authority: a password with a raw @ (p@ss) is hidden whole
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/\s?#]+)@")
_TOKENS = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,}|hf_[A-Za-z0-9]{16,}"
    r"|sk-[A-Za-z0-9_-]{16,}|glpat-[A-Za-z0-9_-]{16,}|xox[abp]-[A-Za-z0-9-]{10,})\b")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&](?:token|api_?key|key|access_token|auth|password|sig|signature)=)"
    r"(?P<value>[^&#\s\"']+)", re.IGNORECASE)
_HEADER = re.compile(r"(?P<key>\b(?:Authorization|Proxy-Authorization|Cookie)\s*[:=]\s*)"
                     r"(?P<value>[^\r\n\"']+)", re.IGNORECASE)
_ASSIGN = re.compile(r"(?P<key>\b[A-Za-z_][A-Za-z0-9_]*)(?P<eq>=)(?P<value>\"[^\"]*\"|'[^']*'"
                     r"|[^\s\"'&;|]+)")
_FLAG_EQ = re.compile(r"(?P<flag>--?[A-Za-z][\w-]*)=(?P<value>\"[^\"]*\"|'[^']*'|\S+)")
_FLAG_SP = re.compile(r"(?P<flag>--?[A-Za-z][\w-]*)(?P<sp>\s+)(?P<value>\"[^\"]*\"|'[^']*'"
                      r"|[^\s-][^\s]*)")
_MIN_ENV_SECRET = 6  # shorter values (e.g. "1") would mask ordinary text


def _env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= _MIN_ENV_SECRET}
    return sorted(values, key=len, reverse=True)


def _secret_flag(flag: str) -> bool:
    return bool(SECRET_FLAG.match(flag)) and not _NOT_SECRET_FLAG.search(flag)


def mask(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every credential replaced by ***. `extra`: further literal secrets."""
    if not text:
        return text
    for secret in [*_env_secrets(), *sorted(extra, key=len, reverse=True)]:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _TOKENS.sub(MASK, text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)
    text = _HEADER.sub(lambda m: f"{m['key']}{MASK}", text)
    text = _ASSIGN.sub(
        lambda m: f"{m['key']}={MASK}" if SECRET_NAME.search(m["key"]) and m["value"] not in
        ("", '""', "''") else m[0], text)
    text = _FLAG_EQ.sub(lambda m: f"{m['flag']}={MASK}" if _secret_flag(m["flag"]) else m[0],
                        text)
    text = _FLAG_SP.sub(
        lambda m: f"{m['flag']}{m['sp']}{MASK}" if _secret_flag(m["flag"]) else m[0], text)
    return text


def mask_argv(argv: Sequence[str]) -> list[str]:
    """An argument list with credential flag values (`--gradio-auth admin:pw`, `--x=pw`)
    and credentials inside arguments masked; for showing or logging a command."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        flag, eq, _value = arg.partition("=")
        if eq and flag.startswith("-") and _secret_flag(flag):
            out.append(f"{flag}={MASK}")
            continue
        if _secret_flag(arg):
            hide_next = True
        out.append(mask(arg))
    return out


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """Environment variables as shown to users: secret-named ones as ***, credentials
    inside the others (URLs with userinfo, COMMANDLINE_ARGS with --gradio-auth) masked."""
    out = {}
    for name, value in env.items():
        if SECRET_NAME.search(name) and value:
            out[name] = MASK
        else:
            out[name] = mask(value)
    return out


def mask_obj(obj: Any) -> Any:
    """A JSON-able structure with every string masked (keys too), for --json documents
    and records."""
    if isinstance(obj, str):
        return mask(obj)
    if isinstance(obj, Mapping):
        return {
            (mask(k) if isinstance(k, str) else k):
            (MASK if isinstance(k, str) and SECRET_NAME.search(k) and isinstance(v, str) and v
             else mask_obj(v))
            for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [mask_obj(v) for v in obj]
    return obj
