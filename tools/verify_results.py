#!/usr/bin/env python3
"""An independent verifier of a 最美医生评选 campaign: its audit chain and its results.

It is written for outsiders (supervisors, the press, any citizen), with Python's standard
library only, so that nobody has to trust the service's own code to check the service:

    python3 tools/verify_results.py --base-url http://127.0.0.1:8080 --campaign 5
    python3 tools/verify_results.py --file export.jsonl
    python3 tools/verify_results.py --file export.jsonl --receipt <hash> --json

What it checks, in seq order, stopping at the first thing that does not hold:

* the links: seq 1, 2, 3 … without gaps; prev_hash is the previous hash (64 zeros first);
  hash = sha256(prev bytes ‖ canonical(body)); kind == body.kind; no floats anywhere;
* the replayed state: the campaign, its categories and candidates (latest body per id);
  ballots and the review decisions that hold, release or invalidate them; expert scores;
* every frozen or published result: its audit_head names the entry just before it, its
  snapshot_hash is the SHA-256 of its results, and its results are exactly what the
  entries before it recount to (see `compute_results`); nothing follows the publication;
* with --base-url, that /audit/head and /results say the same as the chain.

Exit status: 0 when everything checked agrees, 1 when something disagrees (the first bad seq
and why are printed), 2 on usage or network errors. See docs/verification.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from fractions import Fraction

ZERO_HASH = "0" * 64
PAGE_LIMIT = 1000
TRIM_FROM = 5
DEFAULT_RESULTS_RULES = {"public_weight": 100, "expert_weight": 0, "criteria": []}

# Ballot statuses as small codes, so a million ballots fit in a bytearray indexed by seq.
NOT_A_BALLOT, COUNTED, QUARANTINED, INVALIDATED = 0, 1, 2, 3
STATUS_CODES = {"counted": COUNTED, "quarantined": QUARANTINED, "invalidated": INVALIDATED}
STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}
STATUS_CHINESE = {"counted": "计入", "quarantined": "暂扣待复核", "invalidated": "已作废"}
# What each review action may move, and to what (docs/review.md §3).
MOVES = {
    "hold": ((COUNTED,), QUARANTINED),
    "release": ((QUARANTINED,), COUNTED),
    "invalidate": ((COUNTED, QUARANTINED), INVALIDATED),
}
RESULT_KINDS = {"results.draft_frozen": "draft", "results.published": "final"}
# An evaluation's defaults, as the service applies them to rules that do not say.
DEFAULT_LEVEL_POINTS = {"satisfied": 100, "basically_satisfied": 60, "unsatisfied": 0}
DEFAULT_GROUPS = ({"group": "public", "weight": 40}, {"group": "service_object", "weight": 30},
                  {"group": "party_member", "weight": 10}, {"group": "leader", "weight": 10},
                  {"group": "supervisor", "weight": 10})
LEVELS = {"satisfied": 1, "basically_satisfied": 2, "unsatisfied": 3}


class Disagreement(Exception):
    """Something recorded does not hold; `seq` is the first entry it is pinned on."""

    def __init__(self, seq: int, reason: str):
        super().__init__(f"seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason


class UsageError(Exception):
    """Bad arguments or unreadable input: exit status 2, nothing was judged."""


class FetchError(Exception):
    """The service could not be read (network, HTTP error, not JSON): exit status 2."""


# ---------------------------------------------------------------------------------------
# Hashing and numbers


def canonical(value) -> bytes:
    """The canonical JSON of docs/audit-chain.md: sorted keys, no spaces, UTF-8 as itself."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def entry_hash(prev_hash: str, body) -> str:
    """sha256(prev's 32 bytes ‖ canonical(body)), lower-case hex."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical(body)).hexdigest()


def hundredths(value: Fraction) -> int:
    """A non-negative exact number in hundredths, rounded half up: (2·num·100 + den) // 2·den.

    Integer arithmetic only, so 2.675 becomes 268 (binary floats would give 267)."""
    num, den = value.numerator, value.denominator
    return (2 * num * 100 + den) // (2 * den)


def format_hundredths(h: int) -> str:
    """268 → "2.68": the form every score travels in (a string, never a float)."""
    return f"{h // 100}.{h % 100:02d}"


def points(value: Fraction) -> str:
    """An exact number rounded half up to hundredths and written as a string."""
    return format_hundredths(hundredths(value))


def short(h) -> str:
    """A hash shortened for people: the first 12 hex digits."""
    return f"{h[:12]}…" if isinstance(h, str) and len(h) > 12 else str(h)


# ---------------------------------------------------------------------------------------
# JSON reading that notices floats


class JsonReader:
    """Parses JSON and counts floats (and NaN/Infinity) seen, at C speed for everything else.

    The chain forbids floats, but Python's json turns 1.0 and 1e3 into floats silently; the
    hooks let a verifier reject them without walking every body."""

    def __init__(self):
        self.floats = 0
        self._decoder = json.JSONDecoder(parse_float=self._float, parse_constant=self._float)

    def _float(self, text):
        self.floats += 1
        return float(text)

    def loads(self, text: str):
        """(value, whether it contained a float)."""
        before = self.floats
        value = self._decoder.decode(text)
        return value, self.floats != before


def contains_float(value) -> bool:
    """Whether a parsed JSON value holds a float anywhere (only walked when a page had one)."""
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(contains_float(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_float(v) for v in value)
    return False


def is_int(value) -> bool:
    """A JSON integer (Python's bool is an int, but true is not a number)."""
    return type(value) is int


def is_id(value) -> bool:
    """Ids in bodies are strings of ASCII digits."""
    return isinstance(value, str) and value.isascii() and value.isdigit()


# ---------------------------------------------------------------------------------------
# The results formula


def results_rules(campaign: dict) -> dict:
    """rules.results, or the default of campaigns recorded before it existed."""
    rules = campaign.get("rules")
    found = rules.get("results") if isinstance(rules, dict) else None
    return found if found is not None else DEFAULT_RESULTS_RULES


def trimmed(totals: list) -> list:
    """Expert totals kept: from 5 scores up, one highest and one lowest are dropped."""
    if len(totals) >= TRIM_FROM:
        return sorted(totals)[1:-1]
    return list(totals)


def rank_category(category: dict, candidates: list, votes: dict, expert_totals: dict,
                  pw: int, ew: int, m: int) -> list:
    """The ranked candidate rows of one category (candidates: its approved ones).

    Score = pw·v/V + ew·S/(n·M), summed exactly and rounded once; order by the rounded
    score, then votes, then number (then id, so two equal numbers still order the same)."""
    v_max = max((votes.get(c["id"], 0) for c in candidates), default=0)
    rows = []
    for c in candidates:
        v = votes.get(c["id"], 0)
        kept = trimmed(expert_totals.get(c["id"], ()))
        n, s = len(kept), sum(kept)
        a = Fraction(pw * v, v_max) if v_max else Fraction(0)
        b = Fraction(ew * s, n * m) if n and m else Fraction(0)
        h = hundredths(a + b)
        rows.append((h, v, c, n, s))
    rows.sort(key=lambda r: (-r[0], -r[1], r[2]["number"], int(r[2]["id"])))
    ranked = []
    for rank, (h, v, c, n, s) in enumerate(rows, 1):
        ranked.append({
            "rank": rank,
            "candidate_id": c["id"],
            "number": c["number"],
            "name": c["name"],
            "unit": c["unit"],
            "votes": v,
            "vote_points": points(Fraction(100 * v, v_max)) if v_max else "0.00",
            "expert_count": n,
            "expert_points": points(Fraction(100 * s, n * m)) if n and m else None,
            "score": format_hundredths(h),
            "winner": rank <= category["winners"],
        })
    return ranked


def compute_results(campaign: dict, categories: dict, candidates: dict, votes: dict,
                    expert_totals: dict, stage: str) -> dict:
    """The results object that the state replayed so far must produce (integers only).

    categories/candidates: latest state by id; votes: counted votes by candidate id;
    expert_totals: every expert.scored total by candidate id; stage: "draft" or "final"."""
    rules = results_rules(campaign)
    pw, ew = rules["public_weight"], rules["expert_weight"]
    m = sum(c["max"] for c in rules["criteria"])
    approved = {}
    for c in candidates.values():
        if c["status"] == "approved":
            approved.setdefault(c["category_id"], []).append(c)
    out = []
    for cat in sorted(categories.values(), key=lambda c: int(c["id"])):
        out.append({
            "id": cat["id"],
            "name": cat["name"],
            "winners": cat["winners"],
            "candidates": rank_category(cat, approved.get(cat["id"], []), votes,
                                        expert_totals, pw, ew, m),
        })
    return {
        "campaign_id": campaign["id"],
        "title": campaign["title"],
        "stage": stage,
        "method": {"public_weight": pw, "expert_weight": ew, "max_expert_points": m,
                   "trim_from": TRIM_FROM},
        "categories": out,
    }


def evaluation_rules(campaign: dict) -> dict:
    """rules.evaluation with the service's defaults for anything not recorded."""
    rules = campaign.get("rules")
    ev = rules.get("evaluation") if isinstance(rules, dict) else None
    ev = ev if isinstance(ev, dict) else {}
    points = dict(DEFAULT_LEVEL_POINTS)
    points.update(ev.get("level_points") or {})
    groups = ev.get("groups")
    return {"level_points": points,
            "groups": groups if isinstance(groups, list) else list(DEFAULT_GROUPS)}


def places(value: Fraction, n: int) -> int:
    """A non-negative fraction rounded half up to n decimal places, as an integer."""
    unit = 10 ** n
    return (2 * value.numerator * unit + value.denominator) // (2 * value.denominator)


def compute_evaluation_results(campaign: dict, targets: dict, ratings: dict,
                               stage: str) -> dict:
    """An evaluation's results: every target (by id) with its own counted ratings.

    ratings: (target_id, group) → [rated, satisfied, basically_satisfied, unsatisfied].
    satisfaction_rate = (satisfied + basically_satisfied) / rated, 4 places; weighted score =
    Σ weight·(points/rated) / Σ weight over weighted groups that rated, 2 places; both
    exact, rounded half up once."""
    rules = evaluation_rules(campaign)
    lp = rules["level_points"]
    weights = {g["group"]: g["weight"] for g in rules["groups"]}
    out = []
    for t in sorted(targets.values(), key=lambda t: int(t["id"])):
        groups, total = [], [0, 0, 0, 0]
        score, weight_sum = Fraction(0), 0
        for group in sorted(g for (tid, g) in ratings if tid == t["id"]):
            c = ratings[(t["id"], group)]
            if c[0] == 0:
                continue
            w = weights.get(group, 0)
            groups.append({"group": group, "weight": w, "rated": c[0], "satisfied": c[1],
                           "basically_satisfied": c[2], "unsatisfied": c[3]})
            total = [a + b for a, b in zip(total, c)]
            if w > 0:
                pts = c[1] * lp["satisfied"] + c[2] * lp["basically_satisfied"] \
                    + c[3] * lp["unsatisfied"]
                score += Fraction(w * pts, c[0])
                weight_sum += w
        rate = None
        if total[0]:
            r = places(Fraction(total[1] + total[2], total[0]), 4)
            rate = f"{r // 10000}.{r % 10000:04d}"
        out.append({
            "target_id": t["id"], "code": t["code"], "name": t["name"],
            "parent_id": t.get("parent_id"),
            "rated": total[0], "satisfied": total[1], "basically_satisfied": total[2],
            "unsatisfied": total[3],
            "satisfaction_rate": rate,
            "weighted_score": format_hundredths(hundredths(score / weight_sum))
            if weight_sum else None,
            "groups": groups,
        })
    return {
        "campaign_id": campaign["id"],
        "title": campaign["title"],
        "stage": stage,
        "categories": [],
        "evaluation": {"level_points": lp, "groups": rules["groups"], "targets": out},
    }


# ---------------------------------------------------------------------------------------
# Naming the first difference between two results objects


def _show(value) -> str:
    return canonical(value).decode("utf-8")


def _leaf_difference(label: str, expected, recorded):
    """Leaves compare as canonical JSON, so 1 and true, or "1" and 1, differ."""
    if canonical(expected) == canonical(recorded):
        return None
    return f"{label}：重算 {_show(expected)}，记录 {_show(recorded)}"


# Fields compared cause first: a changed vote count is named rather than the score it moved.
FIELD_ORDER = ("campaign_id", "title", "stage", "method", "id", "name", "winners",
               "candidate_id", "number", "unit", "votes", "vote_points", "expert_count",
               "expert_points", "score", "rank", "winner")


def _field_key(key: str):
    return (FIELD_ORDER.index(key), "") if key in FIELD_ORDER else (len(FIELD_ORDER), key)


def _dict_difference(label: str, expected, recorded, skip=(), sep="."):
    """The first field (in FIELD_ORDER, then by name) that differs, is missing or is extra."""
    if not isinstance(expected, dict) or not isinstance(recorded, dict):
        return _leaf_difference(label, expected, recorded)
    for key in sorted(set(expected) | set(recorded), key=_field_key):
        if key in skip:
            continue
        if key not in recorded:
            return f"{label}{sep}{key}：记录中缺少（重算 {_show(expected[key])}）"
        if key not in expected:
            return f"{label}{sep}{key}：记录中多出（{_show(recorded[key])}）"
        found = _leaf_difference(f"{label}{sep}{key}", expected[key], recorded[key])
        if found:
            return found
    return None


def _candidate_label(row) -> str:
    if isinstance(row, dict):
        return (f"候选人 {row.get('candidate_id')}（编号 {row.get('number')}，"
                f"{row.get('name')}，score {row.get('score')}，votes {row.get('votes')}）")
    return _show(row)


def _candidates_difference(label: str, expected: list, recorded) -> str | None:
    if not isinstance(recorded, list):
        return _leaf_difference(f"{label}的 candidates", expected, recorded)
    for i, (e, r) in enumerate(zip(expected, recorded), 1):
        if not isinstance(r, dict) or r.get("candidate_id") != e["candidate_id"]:
            return (f"{label}第 {i} 名：重算为{_candidate_label(e)}，"
                    f"记录为{_candidate_label(r)}")
        found = _dict_difference(
            f"{label}候选人 {e['candidate_id']}（编号 {e['number']}）", e, r, sep="的 ")
        if found:
            return found
    if len(expected) != len(recorded):
        extra = expected[len(recorded):] or recorded[len(expected):]
        side = "重算多出" if len(expected) > len(recorded) else "记录多出"
        return (f"{label}的候选人数：重算 {len(expected)}，记录 {len(recorded)}"
                f"（{side}{_candidate_label(extra[0])}）")
    return None


def results_difference(expected: dict, recorded) -> str | None:
    """Where a recorded results object first differs from the recount, named for people:
    the category, the candidate and the field. None when they are the same canonical JSON."""
    if canonical(expected) == canonical(recorded):
        return None
    if not isinstance(recorded, dict):
        return f"results 不是对象：{_show(recorded)[:200]}"
    if "evaluation" in expected:
        return _evaluation_difference(expected, recorded)
    found = _dict_difference("results", expected, recorded, skip=("categories",))
    if found:
        return found
    got = recorded.get("categories")
    if not isinstance(got, list):
        return _leaf_difference("results.categories", expected["categories"], got)
    for e, r in zip(expected["categories"], got):
        label = f"分类 {e['id']}（{e['name']}）"
        if not isinstance(r, dict) or r.get("id") != e["id"]:
            rid = r.get("id") if isinstance(r, dict) else r
            return f"results.categories：此处重算为分类 {e['id']}，记录为分类 {rid}"
        found = (_dict_difference(label, e, r, skip=("candidates",), sep="的 ")
                 or _candidates_difference(label, e["candidates"], r.get("candidates")))
        if found:
            return found
    if len(expected["categories"]) != len(got):
        return (f"results.categories 的分类数：重算 {len(expected['categories'])}，"
                f"记录 {len(got)}")
    return "results 与重算的 canonical JSON 不同"


def _evaluation_difference(expected: dict, recorded: dict) -> str:
    """An evaluation's first difference, named by target and field."""
    found = _dict_difference("results", expected, recorded, skip=("evaluation",))
    if found:
        return found
    ev, got = expected["evaluation"], recorded.get("evaluation")
    if not isinstance(got, dict):
        return _leaf_difference("results.evaluation", ev, got)
    found = _dict_difference("results.evaluation", ev, got, skip=("targets",))
    if found:
        return found
    targets = got.get("targets")
    if not isinstance(targets, list) or len(targets) != len(ev["targets"]):
        return _leaf_difference("results.evaluation.targets 的个数", len(ev["targets"]),
                                len(targets) if isinstance(targets, list) else targets)
    for e, r in zip(ev["targets"], targets):
        found = _dict_difference(f"对象 {e['target_id']}（{e['name']}）", e, r
                                 if isinstance(r, dict) else {}, sep="的 ")
        if found:
            return found
    return "results 与重算的 canonical JSON 不同"


# ---------------------------------------------------------------------------------------
# The chain, entry by entry


class ChainVerifier:
    """Checks entries in seq order and replays what they record. `feed` raises
    Disagreement at the first entry that does not hold; keep feeding only while it doesn't.

    Work per entry is constant (no rescans), and ballots take one byte of status each plus
    their candidate ids, so a million-entry chain streams through in seconds."""

    def __init__(self, receipts=(), campaign_id: str | None = None):
        self.checked = 0
        self.head_hash = ZERO_HASH
        self._prev = bytes(32)
        self.expected_campaign_id = campaign_id
        # Replayed state.
        self.campaign = None
        self.categories = {}
        self.candidates = {}
        self.targets = {}  # an evaluation's targets by id
        self.ratings = {}  # (target_id, group) → [rated, satisfied, basically, unsatisfied]
        self.votes = {}  # counted votes by candidate id, kept current
        self.status = bytearray(1)  # by seq: NOT_A_BALLOT or a ballot's status code
        self.ballot_candidates = {}  # by ballot seq: its candidate ids
        self.expert_totals = {}  # by candidate id: list of totals
        self._scored = set()  # (expert_id, candidate_id)
        self.decisions = 0
        self.expert_scores = 0
        self.drafts = []  # seqs of results.draft_frozen
        self.published = None  # {"seq", "hash", "body"} of results.published
        self.receipts = {r: None for r in receipts}  # hash → (seq, kind) once seen
        self._handlers = {
            "ballot": self._ballot,
            "rating": self._rating,
            "review.decided": self._decision,
            "expert.scored": self._expert_score,
            "results.draft_frozen": self._results,
            "results.published": self._results,
        }

    # -- links

    def feed(self, entry, has_float: bool = False) -> None:
        """Checks one entry (a parsed JSON object) and applies it to the replayed state."""
        expected = self.checked + 1
        if not isinstance(entry, dict):
            raise Disagreement(expected, "条目不是 JSON 对象")
        seq = entry.get("seq")
        if not is_int(seq):
            raise Disagreement(expected, f"seq 不是整数：{seq!r}")
        if seq != expected:
            if seq > expected:
                why = f"缺少 seq {expected}（下一条是 seq {seq}：条目被删除或被调换顺序）"
            else:
                why = f"应为 seq {expected}，读到 seq {seq}（条目重复或被调换顺序）"
            raise Disagreement(expected, why)
        body, kind = entry.get("body"), entry.get("kind")
        prev_hash, recorded = entry.get("prev_hash"), entry.get("hash")
        if not isinstance(body, dict):
            raise Disagreement(seq, "body 不是 JSON 对象")
        if has_float:
            raise Disagreement(seq, "条目含浮点数（链上只允许整数，小数须写成字符串）")
        if prev_hash != self.head_hash:
            raise Disagreement(seq, f"prev_hash {prev_hash} 不是上一条的 hash {self.head_hash}")
        try:
            digest = hashlib.sha256(self._prev + canonical(body)).digest()
        except (UnicodeEncodeError, ValueError, TypeError) as e:
            raise Disagreement(seq, f"body 无法写成 canonical JSON：{e}") from None
        computed = digest.hex()
        if recorded != computed:
            raise Disagreement(seq, f"hash 不符：记录 {recorded}，按 body 重算 {computed}"
                                    "（body 被改动？）")
        if kind != body.get("kind"):
            raise Disagreement(seq, f"kind {kind!r} 与 body.kind {body.get('kind')!r} 不同")
        if self.published is not None:
            raise Disagreement(seq, f"结果已在 seq {self.published['seq']} 正式公布，"
                                    f"其后不应再有条目（此处是 {kind}）")
        self._check_campaign_id(seq, body)
        self._apply(seq, kind, body, prev_hash, computed)
        self.checked = seq
        self.head_hash = computed
        self._prev = digest
        if computed in self.receipts:
            self.receipts[computed] = (seq, kind)

    def _check_campaign_id(self, seq: int, body: dict) -> None:
        """Every body names its campaign; one chain must not mix two campaigns."""
        cid = body.get("campaign_id")
        if cid is None:
            return
        if self.expected_campaign_id is None:
            self.expected_campaign_id = cid
        elif cid != self.expected_campaign_id:
            raise Disagreement(seq, f"campaign_id {cid!r}，而本链属于活动 "
                                    f"{self.expected_campaign_id!r}")

    # -- state

    def _apply(self, seq: int, kind: str, body: dict, prev_hash: str, hash_: str) -> None:
        self.status.append(NOT_A_BALLOT)
        if "campaign" in body:
            self._campaign(seq, body["campaign"])
        if "category" in body:
            self._category(seq, body["category"])
        if "candidate" in body:
            self._candidate(seq, body["candidate"])
        if "target" in body:
            self._target(seq, body["target"])
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(seq, kind, body, prev_hash, hash_)

    def _campaign(self, seq: int, c) -> None:
        if not isinstance(c, dict) or not is_id(c.get("id")) \
                or not isinstance(c.get("title"), str):
            raise Disagreement(seq, "campaign 状态缺少 id 或 title")
        rules = results_rules(c)
        criteria = rules.get("criteria") if isinstance(rules, dict) else None
        if not (isinstance(rules, dict) and is_int(rules.get("public_weight"))
                and is_int(rules.get("expert_weight")) and isinstance(criteria, list)
                and all(isinstance(k, dict) and is_int(k.get("max")) and k["max"] >= 0
                        for k in criteria)):
            raise Disagreement(seq, f"rules.results 格式不对：{_show(rules)[:200]}")
        self.campaign = c

    def _category(self, seq: int, c) -> None:
        if not (isinstance(c, dict) and is_id(c.get("id")) and isinstance(c.get("name"), str)
                and is_int(c.get("winners")) and c["winners"] >= 0):
            raise Disagreement(seq, f"category 状态格式不对：{_show(c)[:200]}")
        self.categories[c["id"]] = c

    def _candidate(self, seq: int, c) -> None:
        if not (isinstance(c, dict) and is_id(c.get("id")) and is_id(c.get("category_id"))
                and is_int(c.get("number")) and isinstance(c.get("status"), str)
                and "name" in c and "unit" in c):
            raise Disagreement(seq, f"candidate 状态格式不对：{_show(c)[:200]}")
        self.candidates[c["id"]] = c

    def _target(self, seq: int, t) -> None:
        if not (isinstance(t, dict) and is_id(t.get("id")) and isinstance(t.get("code"), str)
                and isinstance(t.get("name"), str)):
            raise Disagreement(seq, f"target 状态格式不对：{_show(t)[:200]}")
        self.targets[t["id"]] = t

    def _rating(self, seq: int, kind, body: dict, *_):
        target, group, level = body.get("target_id"), body.get("group"), body.get("level")
        if not is_id(target) or not isinstance(group, str) or level not in LEVELS:
            raise Disagreement(seq, "评价缺少 target_id、group 或 level")
        counts = self.ratings.setdefault((target, group), [0, 0, 0, 0])
        counts[0] += 1
        counts[LEVELS[level]] += 1

    def _ballot(self, seq: int, kind, body: dict, *_):
        status = STATUS_CODES.get(body.get("status"))
        ids = body.get("candidate_ids")
        if status is None:
            raise Disagreement(seq, f"选票状态 {body.get('status')!r} 未知")
        if not isinstance(ids, list) or not all(is_id(i) for i in ids):
            raise Disagreement(seq, "选票的 candidate_ids 不是数字字符串的列表")
        ids = tuple(sys.intern(i) for i in ids)
        self.status[seq] = status
        self.ballot_candidates[seq] = ids
        if status == COUNTED:
            self._count(ids, 1)

    def _count(self, ids: tuple, change: int) -> None:
        votes = self.votes
        for i in ids:
            votes[i] = votes.get(i, 0) + change

    def _decision(self, seq: int, kind, body: dict, *_):
        d = body.get("decision")
        if not isinstance(d, dict) or d.get("action") not in MOVES \
                or not isinstance(d.get("ballots"), list):
            raise Disagreement(seq, "复核决定缺少 action 或 ballots")
        sources, target = MOVES[d["action"]]
        for b in d["ballots"]:
            if not is_int(b) or not 0 < b < seq or self.status[b] == NOT_A_BALLOT:
                raise Disagreement(seq, f"复核决定指向 seq {b!r}，那不是更早的一张选票")
            now = self.status[b]
            if now not in sources:
                raise Disagreement(seq, f"复核决定要 {d['action']} 选票 seq {b}，"
                                        f"但它当前是 {STATUS_NAMES[now]}")
            if now == COUNTED:
                self._count(self.ballot_candidates[b], -1)
            if target == COUNTED:
                self._count(self.ballot_candidates[b], 1)
            self.status[b] = target
        self.decisions += 1

    def _expert_score(self, seq: int, kind, body: dict, *_):
        s = body.get("score")
        if not isinstance(s, dict) or not is_id(s.get("expert_id")) \
                or not is_id(s.get("candidate_id")):
            raise Disagreement(seq, "专家评分缺少 expert_id 或 candidate_id")
        pts, total = s.get("points"), s.get("total")
        if not isinstance(pts, dict) or not all(is_int(p) and p >= 0 for p in pts.values()):
            raise Disagreement(seq, "专家评分的 points 须为非负整数")
        if not is_int(total) or total != sum(pts.values()):
            raise Disagreement(seq, f"专家评分 total {total!r} 不等于各项之和 {sum(pts.values())}")
        key = (s["expert_id"], s["candidate_id"])
        if key in self._scored:
            raise Disagreement(seq, f"专家 {key[0]} 已给候选人 {key[1]} 评过分，这是第二次")
        self._scored.add(key)
        self.expert_totals.setdefault(s["candidate_id"], []).append(total)
        self.expert_scores += 1

    def recount(self, stage: str) -> dict:
        """The results the state replayed so far gives."""
        if self.campaign.get("kind") == "evaluation":
            return compute_evaluation_results(self.campaign, self.targets, self.ratings, stage)
        return compute_results(self.campaign, self.categories, self.candidates, self.votes,
                               self.expert_totals, stage)

    def _results(self, seq: int, kind: str, body: dict, prev_hash: str, hash_: str):
        results, snapshot, head = body.get("results"), body.get("snapshot_hash"), \
            body.get("audit_head")
        if not isinstance(head, dict) or head.get("seq") != seq - 1 or not is_int(head["seq"]):
            got = head.get("seq") if isinstance(head, dict) else head
            raise Disagreement(seq, f"audit_head.seq 应为 {seq - 1}（上一条），记录为 {got!r}")
        if head.get("hash") != prev_hash:
            raise Disagreement(seq, f"audit_head.hash 应为上一条的 hash {prev_hash}，"
                                    f"记录为 {head.get('hash')!r}")
        if results is None:
            raise Disagreement(seq, "缺少 results")
        actual = hashlib.sha256(canonical(results)).hexdigest()
        if snapshot != actual:
            raise Disagreement(seq, f"snapshot_hash 应为 sha256(canonical(results)) = {actual}，"
                                    f"记录为 {snapshot!r}")
        if self.campaign is None:
            raise Disagreement(seq, "结果之前链上没有活动（campaign）状态，无从重算")
        expected = self.recount(RESULT_KINDS[kind])
        diff = results_difference(expected, results)
        if diff:
            raise Disagreement(seq, f"结果与按链重算的不一致：{diff}")
        if kind == "results.published":
            self.published = {"seq": seq, "hash": hash_, "body": body}
        else:
            self.drafts.append(seq)

    # -- summaries

    def ballot_counts(self) -> dict:
        """How many ballots are in each status now (a C-speed count over the bytearray)."""
        return {name: self.status.count(code) for code, name in STATUS_NAMES.items()}

    def receipt_status(self, receipt: str) -> dict:
        """What a citizen's receipt (an entry hash) says: found?, seq, kind, ballot status."""
        found = self.receipts.get(receipt)
        if found is None:
            return {"receipt": receipt, "found": False}
        seq, kind = found
        out = {"receipt": receipt, "found": True, "seq": seq, "kind": kind}
        if kind == "ballot":
            out["status"] = STATUS_NAMES[self.status[seq]]
        return out


# ---------------------------------------------------------------------------------------
# Reading entries: a JSON Lines file, or the paged HTTP endpoint


def read_jsonl(path: str):
    """Yields (entry, has_float) per non-blank line, reading the file as a stream.

    A line that is not JSON is yielded as None (the verifier reports it at the seq it
    should have been), since a corrupt export is a disagreement, not a usage error."""
    reader = JsonReader()
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"无法打开文件 {path}：{e}") from None
    with f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
                if number == 1:
                    text = text.lstrip("\ufeff")
                yield reader.loads(text)
            except (UnicodeDecodeError, ValueError):
                yield None, False


class Api:
    """The service's public endpoints for one campaign, over plain urllib."""

    def __init__(self, base_url: str, campaign: str, token: str | None = None,
                 timeout: float = 60.0, retries: int = 5):
        self.root = f"{base_url.rstrip('/')}/api/v1/campaigns/{urllib.parse.quote(campaign)}"
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.reader = JsonReader()

    def get(self, path: str, allow_404: bool = False):
        """(parsed JSON, has_float), or (None, False) for a 404 when allowed.

        429 and 503 are retried after Retry-After (at most 30 s), a few times."""
        url = self.root + path
        headers = {"Accept": "application/json", "User-Agent": "minyi-verify-results/1"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                            timeout=self.timeout) as resp:
                    text = resp.read().decode("utf-8")
                break
            except urllib.error.HTTPError as e:
                detail = _error_text(e)
                if e.code == 404 and allow_404:
                    return None, False
                if e.code in (429, 503) and attempt < self.retries:
                    time.sleep(_retry_after(e))
                    continue
                hint = ""
                if e.code == 409 and "audit_entries_hidden" in detail:
                    hint = "（本活动不公开实时票数：结果公布前只有工作人员可读，可用 --token）"
                raise FetchError(f"GET {url} → HTTP {e.code} {detail}{hint}") from None
            except (urllib.error.URLError, OSError, UnicodeDecodeError) as e:
                raise FetchError(f"GET {url} 失败：{e}") from None
        try:
            return self.reader.loads(text)
        except ValueError as e:
            raise FetchError(f"GET {url} 返回的不是 JSON：{e}") from None

    def entries(self, after: int = 0):
        """Yields (entry, has_float) from after_seq on, page by page, as they arrive."""
        while True:
            page, has_float = self.get(f"/audit/entries?after_seq={after}&limit={PAGE_LIMIT}")
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise FetchError("/audit/entries 的回答没有 items 列表")
            for item in items:
                yield item, has_float and contains_float(item)
            cursor = page.get("next_cursor")
            if cursor is None or not items:
                return
            try:
                nxt = int(cursor)
            except (TypeError, ValueError):
                raise FetchError(f"next_cursor {cursor!r} 不是整数") from None
            if nxt <= after:
                raise FetchError(f"next_cursor {nxt} 没有前进（after_seq={after}）")
            after = nxt

    def head(self) -> tuple:
        head, _ = self.get("/audit/head")
        if not isinstance(head, dict) or not is_int(head.get("seq")) \
                or not isinstance(head.get("hash"), str):
            raise FetchError(f"/audit/head 的回答不是 {{seq, hash}}：{head!r}")
        return head["seq"], head["hash"]

    def results(self):
        """The published results, or None when the service says they are not published."""
        found, has_float = self.get("/results", allow_404=True)
        return found, has_float


def _error_text(e: urllib.error.HTTPError) -> str:
    try:
        return e.read().decode("utf-8", "replace")[:300]
    except OSError:
        return ""


def _retry_after(e: urllib.error.HTTPError) -> float:
    try:
        return min(30.0, max(0.5, float(e.headers.get("Retry-After", "2"))))
    except ValueError:
        return 2.0


# ---------------------------------------------------------------------------------------
# Putting it together


def feed_all(verifier: ChainVerifier, entries) -> None:
    """Feeds (entry, has_float) pairs; a None entry is an unreadable line."""
    for entry, has_float in entries:
        if entry is None:
            raise Disagreement(verifier.checked + 1, "这一行不是合法的 JSON（UTF-8）")
        verifier.feed(entry, has_float)


def check_api_head(verifier: ChainVerifier, api: Api, head: tuple) -> tuple:
    """Compares /audit/head with the chain's end, downloading what was added meanwhile.

    The head is read after the entries; on a live campaign new ballots may have arrived,
    so the chain is followed up to the head a few times before calling entries missing."""
    for _ in range(5):
        if head[0] <= verifier.checked:
            break
        before = verifier.checked
        feed_all(verifier, api.entries(verifier.checked))
        if verifier.checked == before:
            break
        head = api.head()
    seq, hash_ = head
    if seq > verifier.checked:
        raise Disagreement(verifier.checked + 1,
                           f"/audit/head 是 seq {seq}，但条目只到 seq {verifier.checked}"
                           "（末尾条目缺失？）")
    if seq < verifier.checked:
        raise Disagreement(seq + 1, f"/audit/head 停在 seq {seq}，但条目已到 seq "
                                    f"{verifier.checked}（链头落后于条目）")
    if hash_ != verifier.head_hash:
        raise Disagreement(seq, f"/audit/head 的 hash {hash_} 与链上 seq {seq} 的 "
                                f"{verifier.head_hash} 不同")
    return head


def check_api_results(verifier: ChainVerifier, found, has_float: bool) -> str:
    """Compares GET /results with the chain's results.published entry."""
    published = verifier.published
    if found is None:
        if published is not None:
            raise Disagreement(published["seq"], "链上已正式公布结果，但 /results 返回 404")
        return "未公布（/results 返回 404，链上也没有 results.published）"
    where = published["seq"] if published else verifier.checked + 1
    if published is None:
        raise Disagreement(where, "/results 返回了结果，但链上没有 results.published 条目")
    if has_float:
        raise Disagreement(where, "/results 含浮点数")
    body = published["body"]
    if not isinstance(found, dict):
        raise Disagreement(where, "/results 的回答不是 JSON 对象")
    for key, want in (("seq", published["seq"]), ("stage", "final"),
                      ("snapshot_hash", body["snapshot_hash"]),
                      ("audit_head", body["audit_head"]),
                      ("campaign_id", verifier.campaign["id"])):
        if canonical(found.get(key)) != canonical(want):
            raise Disagreement(where, f"/results 的 {key} 是 {_show(found.get(key))}，"
                                      f"链上是 {_show(want)}")
    diff = results_difference(body["results"], found.get("results"))
    if diff:
        raise Disagreement(where, f"/results 与链上公布的结果不同：{diff}")
    return f"一致（seq {published['seq']}，snapshot_hash {body['snapshot_hash']}）"


def winners_of(results: dict) -> list:
    """Per category, its winning rows (the lines printed at the end)."""
    return [{"category_id": c["id"], "category": c["name"], "winners": c["winners"],
             "candidates": [{k: r[k] for k in ("rank", "candidate_id", "number", "name",
                                                "score", "votes")}
                            for r in c["candidates"] if r["winner"]]}
            for c in results["categories"]]


def verify(args) -> dict:
    """Runs every check the arguments ask for; returns the report (see --json)."""
    started = time.process_time()
    wall = time.monotonic()
    verifier = ChainVerifier(receipts=args.receipt, campaign_id=args.campaign)
    report = {"ok": False, "source": args.file or args.base_url, "problem": None}
    api = None
    try:
        if args.file:
            feed_all(verifier, read_jsonl(args.file))
        else:
            api = Api(args.base_url, args.campaign, args.token)
            feed_all(verifier, api.entries(0))
            report["api_head"] = "一致（seq {}，hash {}）".format(
                *check_api_head(verifier, api, api.head()))
            report["api_results"] = check_api_results(verifier, *api.results())
        report["ok"] = True
    except Disagreement as d:
        report["problem"] = {"seq": d.seq, "reason": d.reason}
    report.update({
        "entries": verifier.checked,
        "head": {"seq": verifier.checked, "hash": verifier.head_hash},
        "cpu_seconds": round(time.process_time() - started, 3),
        "seconds": round(time.monotonic() - wall, 3),
        "ballots": verifier.ballot_counts(),
        "decisions": verifier.decisions,
        "expert_scores": verifier.expert_scores,
        "votes": dict(sorted(verifier.votes.items(), key=lambda kv: int(kv[0]))),
        "drafts": verifier.drafts,
        "published": None,
        "receipts": [verifier.receipt_status(r) for r in args.receipt],
        "winners": None,
    })
    if verifier.published:
        body = verifier.published["body"]
        report["published"] = {"seq": verifier.published["seq"],
                               "snapshot_hash": body["snapshot_hash"],
                               "audit_head": body["audit_head"]}
    if report["ok"]:
        if verifier.published:
            report["winners"] = winners_of(verifier.published["body"]["results"])
            report["winners_from"] = "published"
        elif verifier.campaign is not None:
            report["winners"] = winners_of(verifier.recount("draft"))
            report["winners_from"] = "recount"
        if any(not r["found"] for r in report["receipts"]):
            missing = next(r["receipt"] for r in report["receipts"] if not r["found"])
            report["ok"] = False
            report["problem"] = {"seq": 0, "reason": f"回执 {missing} 不在链上"}
    return report


def print_human(report: dict, out=sys.stdout) -> None:
    """The report in Chinese, for people."""
    p = lambda *a: print(*a, file=out)  # noqa: E731
    head = report["head"]
    rate = report["entries"] / report["cpu_seconds"] if report["cpu_seconds"] else 0
    timing = f"（CPU {report['cpu_seconds']:.1f} s，约 {rate:,.0f} 条/秒）" if rate else ""
    problem = report["problem"]
    chain_broken = problem is not None and problem["seq"] > 0
    if not chain_broken:
        p(f"链校验通过：共 {report['entries']} 条，链头 seq {head['seq']} hash {head['hash']}"
          f"{timing}")
    else:
        span = f"（seq 1–{report['entries']}）" if report["entries"] else ""
        p(f"已校验 {report['entries']} 条{span}{timing}")
    b = report["ballots"]
    p(f"选票 {sum(b.values())} 张：计入 {b['counted']}，暂扣 {b['quarantined']}，"
      f"作废 {b['invalidated']}；复核决定 {report['decisions']} 条；"
      f"专家评分 {report['expert_scores']} 条")
    if report["drafts"]:
        p(f"结果草稿冻结：seq {'、'.join(map(str, report['drafts']))}，计票一致")
    if report["published"]:
        pub = report["published"]
        p(f"结果正式公布：seq {pub['seq']}，snapshot_hash {pub['snapshot_hash']}，计票一致")
    elif not chain_broken:
        p("结果尚未正式公布")
    if "api_head" in report:
        p(f"/audit/head：{report['api_head']}")
    if "api_results" in report:
        p(f"/results：{report['api_results']}")
    for r in report["receipts"]:
        if r["found"]:
            extra = ""
            if "status" in r:
                extra = f"，当前状态 {r['status']}（{STATUS_CHINESE[r['status']]}）"
            p(f"回执 {short(r['receipt'])}：在链上，seq {r['seq']}，kind {r['kind']}{extra}")
        elif chain_broken:
            p(f"回执 {short(r['receipt'])}：在已校验的部分中没有找到（链在 seq {problem['seq']} 处不一致）")
        else:
            p(f"回执 {short(r['receipt'])}：不在链上")
    if report.get("winners") is not None:
        if report["winners_from"] == "published":
            p("获奖名单（正式公布的结果，已按链重算核对）：")
        else:
            p("按链上当前状态重算的领先者（尚未公布，仅供参考）：")
        for cat in report["winners"]:
            p(f"  【{cat['category']}】（分类 {cat['category_id']}，{cat['winners']} 名）")
            for r in cat["candidates"]:
                p(f"    {r['rank']}. {r['name']}（编号 {r['number']}）{r['score']} 分，"
                  f"{r['votes']} 票")
            if not cat["candidates"]:
                p("    （无）")
    if problem:
        where = f"seq {problem['seq']}：" if problem["seq"] else ""
        p(f"不一致：{where}{problem['reason']}")
    else:
        p("结论：全部一致")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="独立核验最美医生评选的审计链与结果（只用 Python 标准库）。",
        epilog="退出码：0 全部一致；1 有不一致（打印第一个出错的 seq 与原因）；2 用法或网络错误。")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--base-url", help="服务地址，如 http://127.0.0.1:8080")
    source.add_argument("--file", help="审计链导出文件（JSON Lines，每行一条）")
    parser.add_argument("--campaign", help="活动 id（与 --base-url 一起用；与 --file 一起用时核对 campaign_id）")
    parser.add_argument("--receipt", action="append", default=[], metavar="HEX",
                        help="核对一张回执（条目 hash），可重复")
    parser.add_argument("--token", help="工作人员令牌，作为 Authorization: Bearer 发送")
    parser.add_argument("--json", action="store_true", help="输出机器可读的 JSON 报告")
    args = parser.parse_args(argv)
    if args.base_url and not args.campaign:
        parser.error("--base-url 需要 --campaign")
    if args.campaign is not None and not is_id(args.campaign):
        parser.error("--campaign 须为数字 id")
    if args.token and not args.base_url:
        parser.error("--token 只用于 --base-url")
    receipts = []
    for r in args.receipt:
        r = r.strip().lower()
        if len(r) != 64 or any(ch not in "0123456789abcdef" for ch in r):
            parser.error(f"回执须为 64 位十六进制：{r}")
        receipts.append(r)
    args.receipt = receipts
    return args


def main(argv=None, out=None) -> int:
    """The command line; returns the exit status (0 agree, 1 disagree, 2 usage/network)."""
    out = out or sys.stdout
    args = parse_args(argv)
    try:
        report = verify(args)
    except (UsageError, FetchError) as e:
        if args.json:
            print(json.dumps({"ok": False, "exit_status": 2, "error": str(e)},
                             ensure_ascii=False, indent=2), file=out)
        else:
            print(f"错误：{e}", file=sys.stderr)
        return 2
    status = 0 if report["ok"] else 1
    if args.json:
        report["exit_status"] = status
        print(json.dumps(report, ensure_ascii=False, indent=2), file=out)
    else:
        print_human(report, out)
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(2)
