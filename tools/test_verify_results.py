"""Tests of tools/verify_results.py: synthetic chains hashed the same way as the service's,
each kind of tampering caught at the right seq, and hand-worked ranking examples.

Run: python3 -m unittest discover -s tools -p 'test_*.py'
"""

import copy
import hashlib
import io
import json
import os
import sys
import tempfile
import threading
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import verify_results as vr  # noqa: E402

ZERO = "0" * 64
CAMPAIGN = "5"
STAFF = {"staff_id": "3", "username": "li.organizer", "role": "organizer"}


def canon(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def link(entries, start=0):
    """Recomputes prev_hash and hash from index `start` on, as an insider rewriting the
    table behind the chain would; results bodies get their audit_head and snapshot_hash
    fixed too, so only the recount can still catch the change."""
    prev = entries[start - 1]["hash"] if start else ZERO
    for e in entries[start:]:
        body = e["body"]
        if body["kind"] in vr.RESULT_KINDS:
            body["audit_head"] = {"seq": e["seq"] - 1, "hash": prev}
            body["snapshot_hash"] = hashlib.sha256(canon(body["results"])).hexdigest()
        e["prev_hash"] = prev
        e["hash"] = hashlib.sha256(bytes.fromhex(prev) + canon(body)).hexdigest()
        prev = e["hash"]
    return entries


def rehash_only(entries, start):
    """Recomputes only the links from `start` on (results bodies left as they are)."""
    prev = entries[start - 1]["hash"] if start else ZERO
    for e in entries[start:]:
        e["prev_hash"] = prev
        e["hash"] = hashlib.sha256(bytes.fromhex(prev) + canon(e["body"])).hexdigest()
        prev = e["hash"]
    return entries


class Chain:
    """Builds a campaign's chain entry by entry, hashing as docs/audit-chain.md says."""

    def __init__(self):
        self.entries = []

    def add(self, kind, actor=None, **fields):
        seq = len(self.entries) + 1
        body = {"kind": kind, "at": f"2026-06-01T08:00:{seq % 60:02d}.000000Z",
                "actor": actor or STAFF, "campaign_id": CAMPAIGN, **fields}
        prev = self.entries[-1]["hash"] if self.entries else ZERO
        h = hashlib.sha256(bytes.fromhex(prev) + canon(body)).hexdigest()
        self.entries.append({"seq": seq, "kind": kind, "body": body,
                             "prev_hash": prev, "hash": h})
        return seq

    def campaign(self, kind="campaign.created", pw=40, ew=60, criteria=None, title="2026年最美医生"):
        criteria = criteria if criteria is not None else [
            {"key": "ethics", "name": "医德", "max": 60},
            {"key": "skill", "name": "医术", "max": 40}]
        rules = {"votes_per_day": 10, "show_counts": "live",
                 "results": {"public_weight": pw, "expert_weight": ew, "criteria": criteria}}
        return self.add(kind, campaign={
            "id": CAMPAIGN, "kind": "selection", "title": title, "description": "",
            "timezone": "Asia/Shanghai", "phases": [], "rules": rules, "draft": False})

    def category(self, id_, name, winners):
        return self.add("category.created", category={"id": id_, "name": name,
                                                      "winners": winners})

    def candidate(self, id_, category_id, number, name, status="approved"):
        return self.add("candidate.nominated", candidate={
            "id": id_, "category_id": category_id, "number": number, "name": name,
            "unit": "市第一人民医院", "department": "心内科", "title": "主任医师",
            "photo_url": "", "story": "", "status": status, "reason": ""})

    def ballot(self, ids, status="counted", voter="v1"):
        return self.add("ballot", actor={"system": "ballot"}, voter_id=voter,
                        candidate_ids=list(ids), status=status, flags=[])

    def decide(self, action, seqs):
        return self.add("review.decided", decision={
            "action": action, "reason": "测试", "ballots": list(seqs), "votes": {}})

    def score(self, expert, candidate, ethics, skill):
        return self.add("expert.scored", score={
            "expert_id": expert, "candidate_id": candidate,
            "points": {"ethics": ethics, "skill": skill}, "total": ethics + skill})

    def results(self, kind, results):
        prev = self.entries[-1]["hash"] if self.entries else ZERO
        return self.add(kind, actor=STAFF, results=results,
                        snapshot_hash=hashlib.sha256(canon(results)).hexdigest(),
                        audit_head={"seq": len(self.entries), "hash": prev})


# The worked example of docs/verification.md, by hand: pw 40, ew 60, M = 60 + 40 = 100.
WORKED_CATEGORY_1 = {
    "id": "1", "name": "医生", "winners": 2,
    "candidates": [
        {"rank": 1, "candidate_id": "12", "number": 1, "name": "甲", "unit": "市第一人民医院",
         "votes": 300, "vote_points": "100.00", "expert_count": 3, "expert_points": "85.00",
         "score": "91.00", "winner": True},
        {"rank": 2, "candidate_id": "13", "number": 2, "name": "乙", "unit": "市第一人民医院",
         "votes": 240, "vote_points": "80.00", "expert_count": 3, "expert_points": "92.33",
         "score": "87.40", "winner": True},
        {"rank": 3, "candidate_id": "14", "number": 3, "name": "丙", "unit": "市第一人民医院",
         "votes": 0, "vote_points": "0.00", "expert_count": 0, "expert_points": None,
         "score": "0.00", "winner": False},
    ]}


def worked_results(stage):
    """The full results object for `worked_chain`, written out by hand."""
    return {
        "campaign_id": CAMPAIGN, "title": "2026年最美医生", "stage": stage,
        "method": {"public_weight": 40, "expert_weight": 60, "max_expert_points": 100,
                   "trim_from": 5},
        "categories": [
            copy.deepcopy(WORKED_CATEGORY_1),
            # Only a rejected and a nominated candidate: no approved ones.
            {"id": "2", "name": "护士", "winners": 1, "candidates": []},
            # Nobody voted here: V = 0, so the score is the expert part alone.
            {"id": "10", "name": "乡村医生", "winners": 1, "candidates": [
                {"rank": 1, "candidate_id": "21", "number": 1, "name": "丁",
                 "unit": "市第一人民医院", "votes": 0, "vote_points": "0.00",
                 "expert_count": 1, "expert_points": "80.00", "score": "48.00",
                 "winner": True}]},
        ]}


def worked_chain():
    """A small campaign whose published results are `worked_results("final")`.

    Returns (entries, seqs) where seqs names interesting entries for the tamper tests."""
    c = Chain()
    s = {}
    c.campaign()
    c.category("1", "医生", 2)
    c.category("2", "护士", 1)
    c.category("10", "乡村医生", 1)
    c.candidate("12", "1", 1, "甲")
    c.candidate("13", "1", 2, "乙")
    c.candidate("14", "1", 3, "丙", status="nominated")
    c.candidate("15", "2", 1, "戊", status="rejected")
    c.candidate("16", "2", 2, "己", status="nominated")
    c.candidate("21", "10", 1, "丁")
    s["approve_14"] = c.add("candidate.status_changed", **{"from": "nominated"}, candidate={
        "id": "14", "category_id": "1", "number": 3, "name": "丙", "unit": "市第一人民医院",
        "department": "心内科", "title": "主任医师", "photo_url": "", "story": "",
        "status": "approved", "reason": ""})
    s["first_ballot"] = c.ballot(["12", "13"])
    for _ in range(239):
        c.ballot(["12", "13"])
    for _ in range(59):
        c.ballot(["12"])
    # Held, then released: counts in the end.
    s["held_then_released"] = c.ballot(["12"])
    # Quarantined on arrival and never released: not counted.
    s["quarantined"] = c.ballot(["13", "14"], status="quarantined")
    # Quarantined, then invalidated.
    s["invalidated"] = c.ballot(["14"], status="quarantined")
    # Votes for a candidate that is not approved (rejected): not in the results.
    c.ballot(["15"])
    s["hold"] = c.decide("hold", [s["held_then_released"]])
    s["draft_while_held"] = c.results("results.draft_frozen", _held_draft())
    c.decide("release", [s["held_then_released"]])
    s["invalidate"] = c.decide("invalidate", [s["invalidated"]])
    c.add("objection.received", objection={"id": "1", "text_sha256": "ab" * 32})
    for expert, (e, k) in zip("12345", [(50, 40), (45, 35), (50, 35), (40, 30), (55, 40)]):
        c.score(expert, "12", e, k)  # totals 90, 80, 85, 70, 95
    for expert, (e, k) in zip("123", [(55, 40), (50, 40), (52, 40)]):
        c.score(expert, "13", e, k)  # totals 95, 90, 92
    c.score("1", "21", 50, 30)
    s["draft"] = c.results("results.draft_frozen", worked_results("draft"))
    s["published"] = c.results("results.published", worked_results("final"))
    return c.entries, s


def _held_draft():
    """The draft frozen while one ["12"] ballot was held: A has 299 votes, no experts yet."""
    r = worked_results("draft")
    r["categories"][0] = {"id": "1", "name": "医生", "winners": 2, "candidates": [
        # 40·299/299 = 40.00; B: 40·240/299 = 32.107… → 32.11
        {"rank": 1, "candidate_id": "12", "number": 1, "name": "甲", "unit": "市第一人民医院",
         "votes": 299, "vote_points": "100.00", "expert_count": 0, "expert_points": None,
         "score": "40.00", "winner": True},
        {"rank": 2, "candidate_id": "13", "number": 2, "name": "乙", "unit": "市第一人民医院",
         "votes": 240, "vote_points": "80.27", "expert_count": 0, "expert_points": None,
         "score": "32.11", "winner": True},
        {"rank": 3, "candidate_id": "14", "number": 3, "name": "丙", "unit": "市第一人民医院",
         "votes": 0, "vote_points": "0.00", "expert_count": 0, "expert_points": None,
         "score": "0.00", "winner": False}]}
    r["categories"][2]["candidates"][0].update(
        {"expert_count": 0, "expert_points": None, "score": "0.00"})
    return r


def run(entries):
    """Feeds entries; returns None when all holds, else the Disagreement."""
    v = vr.ChainVerifier()
    try:
        vr.feed_all(v, ((e, vr.contains_float(e)) for e in entries))
    except vr.Disagreement as d:
        return d
    return None


def write_jsonl(entries, directory):
    path = os.path.join(directory, "chain.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    return path


def cli(*argv):
    out = io.StringIO()
    status = vr.main(list(argv), out=out)
    return status, out.getvalue()


class HashingTest(unittest.TestCase):
    def test_the_documented_worked_example_holds(self):
        body = {"kind": "category.created", "at": "2026-06-01T08:00:00.000000Z",
                "actor": {"staff_id": "3", "username": "li.organizer", "role": "organizer"},
                "campaign_id": "1", "category": {"id": "2", "name": "护士", "winners": 10}}
        prev = "5f0c3a0e8f4d7e2b9a1c6d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6"
        self.assertEqual(vr.entry_hash(prev, body),
                         "eb5cefbafd4c3578703418e6113b482635df4ec48f523ab40b5cc6fea0fbb682")

    def test_canonical_form(self):
        self.assertEqual(vr.canonical({"b": 1, "a": {"d": "护士\n/", "c": None}}),
                         '{"a":{"c":null,"d":"护士\\n/"},"b":1}'.encode("utf-8"))
        self.assertEqual(vr.canonical("\x01"), b'"\\u0001"')

    def test_rounding_is_half_up_in_integers(self):
        from fractions import Fraction as F
        self.assertEqual(vr.points(F(2675, 1000)), "2.68")  # round(2.675, 2) == 2.67
        self.assertEqual(vr.points(F(1, 8)), "0.13")  # 0.125
        self.assertEqual(vr.points(F(1, 40)), "0.03")  # 0.025
        self.assertEqual(vr.points(F(1249, 10000)), "0.12")
        self.assertEqual(vr.points(F(27700, 300)), "92.33")
        self.assertEqual(vr.points(F(0)), "0.00")
        self.assertEqual(vr.points(F(100)), "100.00")


class RankingTest(unittest.TestCase):
    """Hand-worked examples of the formula; every expected string was worked on paper."""

    def rank(self, pw, ew, m, cands, winners=1):
        """cands: (id, number, votes, [expert totals]) → the ranked rows."""
        cat = {"id": "1", "name": "医生", "winners": winners}
        rows = [{"id": i, "number": n, "name": f"c{i}", "unit": "u"} for i, n, _, _ in cands]
        votes = {i: v for i, _, v, _ in cands}
        totals = {i: t for i, _, _, t in cands if t}
        return vr.rank_category(cat, rows, votes, totals, pw, ew, m)

    def brief(self, rows):
        return [(r["candidate_id"], r["rank"], r["score"], r["vote_points"],
                 r["expert_count"], r["expert_points"], r["winner"]) for r in rows]

    def test_worked_example(self):
        # A: 5 totals → drop 95 and 70 → 80+85+90 = 255, n 3: 40·300/300 + 60·255/300
        #    = 40 + 51 = 91.00. B: 40·240/300 + 60·277/300 = 32 + 55.4 = 87.40,
        #    expert_points 27700/300 = 92.333… C: nothing.
        rows = self.rank(40, 60, 100, [("12", 1, 300, [90, 80, 85, 70, 95]),
                                       ("13", 2, 240, [95, 90, 92]),
                                       ("14", 3, 0, [])], winners=2)
        self.assertEqual(self.brief(rows), [
            ("12", 1, "91.00", "100.00", 3, "85.00", True),
            ("13", 2, "87.40", "80.00", 3, "92.33", True),
            ("14", 3, "0.00", "0.00", 0, None, False)])

    def test_trimming_drops_one_highest_and_one_lowest_from_five_up(self):
        # Six totals, equal extremes: drop one 90 and the 60 → 90+80+70+70 = 310, n 4;
        # 100·310/400 = 77.50. Four totals: no trimming, 200/4 = 50.00.
        rows = self.rank(0, 100, 100, [("1", 1, 0, [90, 90, 80, 70, 70, 60]),
                                       ("2", 2, 0, [100, 0, 50, 50])])
        self.assertEqual(self.brief(rows), [
            ("1", 1, "77.50", "0.00", 4, "77.50", True),
            ("2", 2, "50.00", "0.00", 4, "50.00", False)])

    def test_category_with_no_votes(self):
        # V = 0: the vote part is 0 and vote_points "0.00"; 60·80/100 = 48.00.
        rows = self.rank(40, 60, 100, [("1", 2, 0, [80]), ("2", 1, 0, [])])
        self.assertEqual(self.brief(rows), [
            ("1", 1, "48.00", "0.00", 1, "80.00", True),
            ("2", 2, "0.00", "0.00", 0, None, False)])
        self.assertEqual(self.rank(40, 60, 100, []), [])

    def test_no_criteria_means_no_expert_part(self):
        rows = self.rank(100, 0, 0, [("1", 1, 3, [50]), ("2", 2, 1, [])])
        # M = 0: expert_points null even with a score; 100·1/3 = 33.33.
        self.assertEqual(self.brief(rows), [
            ("1", 1, "100.00", "100.00", 1, None, True),
            ("2", 2, "33.33", "33.33", 0, None, False)])

    def test_ties_broken_by_votes_then_number(self):
        # pw 50, ew 50, M 100, V 100: X 50 + 50·40/100 = 70.00; Y and Z 25 + 45 = 70.00.
        # X has more votes; Y and Z tie on votes too, and Y has the lower number.
        rows = self.rank(50, 50, 100, [("21", 9, 50, [90]), ("30", 2, 50, [90]),
                                       ("40", 5, 100, [40])], winners=2)
        self.assertEqual([(r["candidate_id"], r["rank"], r["score"], r["winner"])
                          for r in rows],
                         [("40", 1, "70.00", True), ("30", 2, "70.00", True),
                          ("21", 3, "70.00", False)])

    def test_ties_are_on_the_rounded_score(self):
        # pw 70, ew 30, M 70, V 300. P: 70·11/300 = 2.5666… → 2.57, no experts.
        # Q: 0 votes, one total 6: 30·6/70 = 2.5714… → 2.57. Exactly Q is ahead, but the
        # hundredths tie and P has more votes, so P ranks before Q.
        rows = self.rank(70, 30, 70, [("1", 1, 0, [6]), ("2", 2, 11, []),
                                      ("3", 3, 300, [])])
        self.assertEqual(self.brief(rows), [
            ("3", 1, "70.00", "100.00", 0, None, True),
            ("2", 2, "2.57", "3.67", 0, None, False),
            ("1", 3, "2.57", "0.00", 1, "8.57", False)])

    def test_rounding_half_up_at_xx5(self):
        # pw 100, V 4000: 100·107/4000 = 2.675 → 2.68 (a float would say 2.67);
        # 100·5/4000 = 0.125 → 0.13; 100·1/4000 = 0.025 → 0.03.
        rows = self.rank(100, 0, 0, [("1", 1, 4000, []), ("2", 2, 107, []),
                                     ("3", 3, 5, []), ("4", 4, 1, [])])
        self.assertEqual([(r["score"], r["vote_points"]) for r in rows],
                         [("100.00", "100.00"), ("2.68", "2.68"), ("0.13", "0.13"),
                          ("0.03", "0.03")])

    def test_the_sum_is_rounded_once(self):
        # pw 50, ew 50, M 400, V 400. Candidate 2: 50·1/400 = 0.125 plus 50·1/400 = 0.125:
        # 0.25 exactly → "0.25" (rounding each part first would give 0.13 + 0.13 = 0.26).
        rows = self.rank(50, 50, 400, [("1", 1, 400, []), ("2", 2, 1, [1])])
        self.assertEqual(self.brief(rows), [
            ("1", 1, "50.00", "100.00", 0, None, True),
            ("2", 2, "0.25", "0.25", 1, "0.25", False)])

    def test_compute_results_orders_categories_by_numeric_id(self):
        campaign = {"id": "5", "title": "t", "rules": {}}  # no rules.results: the default
        cats = {i: {"id": i, "name": i, "winners": 1} for i in ("10", "9", "2")}
        r = vr.compute_results(campaign, cats, {}, {}, {}, "draft")
        self.assertEqual([c["id"] for c in r["categories"]], ["2", "9", "10"])
        self.assertEqual(r["method"], {"public_weight": 100, "expert_weight": 0,
                                       "max_expert_points": 0, "trim_from": 5})


class ChainTest(unittest.TestCase):
    def setUp(self):
        self.entries, self.seqs = worked_chain()

    def assertCaught(self, entries, seq, *words):
        d = run(entries)
        self.assertIsNotNone(d, "the tampering went unnoticed")
        self.assertEqual(d.seq, seq, d.reason)
        for w in words:
            self.assertIn(w, d.reason)
        return d

    def test_a_good_chain_passes_and_recounts(self):
        v = vr.ChainVerifier()
        vr.feed_all(v, ((e, False) for e in self.entries))
        self.assertEqual(v.checked, len(self.entries))
        self.assertEqual(v.published["seq"], self.seqs["published"])
        self.assertEqual(v.drafts, [self.seqs["draft_while_held"], self.seqs["draft"]])
        self.assertEqual(v.votes["12"], 300)
        self.assertEqual(v.votes["13"], 240)
        self.assertEqual(v.ballot_counts(), {"counted": 301, "quarantined": 1,
                                             "invalidated": 1})

    def test_a_changed_body(self):
        e = copy.deepcopy(self.entries)
        e[self.seqs["first_ballot"] - 1]["body"]["candidate_ids"] = ["13"]
        self.assertCaught(e, self.seqs["first_ballot"], "hash")

    def test_a_changed_name_of_a_candidate(self):
        e = copy.deepcopy(self.entries)
        e[4]["body"]["candidate"]["name"] = "甲甲"
        self.assertCaught(e, 5, "hash")

    def test_a_dropped_entry(self):
        e = copy.deepcopy(self.entries)
        del e[self.seqs["hold"] - 1]
        self.assertCaught(e, self.seqs["hold"], "缺少")

    def test_a_dropped_entry_renumbered_and_rehashed(self):
        # Drop the hold and renumber everything after it: links hold again, but the draft
        # frozen while the ballot was held now recounts differently.
        e = copy.deepcopy(self.entries)
        del e[self.seqs["hold"] - 1]
        for i, x in enumerate(e, 1):
            x["seq"] = i
        link(e, self.seqs["hold"] - 1)
        self.assertCaught(e, self.seqs["draft_while_held"] - 1, "候选人 12", "votes")

    def test_reordered_entries(self):
        e = copy.deepcopy(self.entries)
        k = self.seqs["hold"] - 1
        e[k], e[k + 1] = e[k + 1], e[k]
        self.assertCaught(e, self.seqs["hold"], "调换")

    def test_reordered_and_renumbered(self):
        e = copy.deepcopy(self.entries)
        k = self.seqs["hold"] - 1
        e[k], e[k + 1] = e[k + 1], e[k]
        e[k]["seq"], e[k + 1]["seq"] = k + 1, k + 2
        self.assertCaught(e, self.seqs["hold"], "prev_hash")

    def test_a_ballot_whose_status_was_changed(self):
        e = copy.deepcopy(self.entries)
        q = self.seqs["quarantined"]
        e[q - 1]["body"]["status"] = "counted"
        self.assertCaught(e, q, "hash")

    def test_a_ballot_whose_status_was_changed_and_the_chain_rewritten(self):
        # An insider rewrites every later hash, audit_head and snapshot_hash: the first
        # frozen result after it no longer recounts (B gains a vote).
        e = copy.deepcopy(self.entries)
        q = self.seqs["quarantined"]
        receipt = e[q - 1]["hash"]
        e[q - 1]["body"]["status"] = "counted"
        link(e, q - 1)
        self.assertCaught(e, self.seqs["draft_while_held"], "候选人 13", "votes", "241")
        # And the voter's receipt is no longer on the chain.
        v = vr.ChainVerifier(receipts=[receipt])
        with self.assertRaises(vr.Disagreement):
            vr.feed_all(v, ((x, False) for x in e))
        self.assertFalse(v.receipt_status(receipt)["found"])

    def test_published_numbers_edited_with_hashes_recomputed(self):
        e = copy.deepcopy(self.entries)
        p = self.seqs["published"]
        row = e[p - 1]["body"]["results"]["categories"][0]["candidates"][1]
        row["votes"] = 250
        link(e, p - 1)  # snapshot_hash and the entry's hash recomputed
        self.assertCaught(e, p, "分类 1", "候选人 13", "votes", "240", "250")

    def test_published_winner_swapped(self):
        e = copy.deepcopy(self.entries)
        p = self.seqs["published"]
        cands = e[p - 1]["body"]["results"]["categories"][0]["candidates"]
        cands[0], cands[1] = cands[1], cands[0]
        cands[0]["rank"], cands[1]["rank"] = 1, 2
        link(e, p - 1)
        self.assertCaught(e, p, "第 1 名", "候选人 12", "候选人 13")

    def test_a_wrong_snapshot_hash(self):
        e = copy.deepcopy(self.entries)
        p = self.seqs["published"]
        e[p - 1]["body"]["snapshot_hash"] = "ab" * 32
        rehash_only(e, p - 1)
        self.assertCaught(e, p, "snapshot_hash")

    def test_a_wrong_audit_head(self):
        e = copy.deepcopy(self.entries)
        d = self.seqs["draft"]
        e[d - 1]["body"]["audit_head"]["seq"] = d - 2
        rehash_only(e, d - 1)
        self.assertCaught(e, d, "audit_head.seq")
        e = copy.deepcopy(self.entries)
        e[d - 1]["body"]["audit_head"]["hash"] = e[d - 3]["hash"]
        rehash_only(e, d - 1)
        self.assertCaught(e, d, "audit_head.hash")

    def test_a_draft_must_say_draft(self):
        e = copy.deepcopy(self.entries)
        d = self.seqs["draft"]
        e[d - 1]["body"]["results"]["stage"] = "final"
        link(e, d - 1)
        self.assertCaught(e, d, "results.stage")

    def test_nothing_may_follow_the_publication(self):
        c = Chain()
        c.entries = copy.deepcopy(self.entries)
        late = c.ballot(["12"])
        self.assertCaught(c.entries, late, "正式公布")

    def test_a_decision_on_something_that_is_not_an_earlier_ballot(self):
        e = copy.deepcopy(self.entries)
        h = self.seqs["hold"]
        e[h - 1]["body"]["decision"]["ballots"] = [3]  # a category entry
        link(e, h - 1)
        self.assertCaught(e, h, "seq 3")
        e[h - 1]["body"]["decision"]["ballots"] = [h + 5]  # a later seq
        link(e, h - 1)
        self.assertCaught(e, h, f"seq {h + 5}")

    def test_a_decision_that_cannot_move_the_ballot(self):
        e = copy.deepcopy(self.entries)
        h = self.seqs["hold"]
        e[h - 1]["body"]["decision"]["action"] = "release"  # the ballot is counted
        link(e, h - 1)
        self.assertCaught(e, h, "release", "counted")
        # Invalidated stays invalidated.
        c = Chain()
        c.campaign()
        b = c.ballot(["1"], status="quarantined")
        c.decide("invalidate", [b])
        d = c.decide("release", [b])
        self.assertCaught(c.entries, d, "invalidated")

    def test_expert_total_must_be_the_sum(self):
        c = Chain()
        c.campaign()
        s = c.add("expert.scored", score={"expert_id": "7", "candidate_id": "12",
                                          "points": {"ethics": 35, "skill": 28}, "total": 64})
        self.assertCaught(c.entries, s, "total")

    def test_one_score_per_expert_and_candidate(self):
        c = Chain()
        c.campaign()
        c.score("7", "12", 35, 28)
        c.score("8", "12", 35, 28)
        s = c.score("7", "12", 30, 20)
        self.assertCaught(c.entries, s, "专家 7", "候选人 12")

    def test_floats_are_refused(self):
        c = Chain()
        c.campaign()
        s = c.add("rating", level=4.5)
        self.assertCaught(c.entries, s, "浮点数")

    def test_kind_must_match_the_body(self):
        e = copy.deepcopy(self.entries)
        e[1]["kind"] = "category.updated"
        self.assertCaught(e, 2, "kind")

    def test_first_prev_hash_is_zeros(self):
        e = copy.deepcopy(self.entries)
        e[0]["prev_hash"] = "11" * 32
        self.assertCaught(e, 1, "prev_hash")

    def test_results_without_a_campaign(self):
        c = Chain()
        s = c.results("results.draft_frozen", {"stage": "draft"})
        self.assertCaught(c.entries, s, "campaign")

    def test_receipts_report_the_status_after_decisions(self):
        s = self.seqs
        receipts = {name: self.entries[s[name] - 1]["hash"]
                    for name in ("first_ballot", "held_then_released", "quarantined",
                                 "invalidated", "hold")}
        v = vr.ChainVerifier(receipts=receipts.values())
        vr.feed_all(v, ((e, False) for e in self.entries))
        got = {name: v.receipt_status(h) for name, h in receipts.items()}
        self.assertEqual(got["first_ballot"]["status"], "counted")
        self.assertEqual(got["held_then_released"]["status"], "counted")
        self.assertEqual(got["quarantined"]["status"], "quarantined")
        self.assertEqual(got["invalidated"]["status"], "invalidated")
        self.assertEqual(got["hold"]["kind"], "review.decided")
        self.assertNotIn("status", got["hold"])
        self.assertEqual(got["quarantined"]["seq"], s["quarantined"])


class FileCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.entries, self.seqs = worked_chain()

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_good_export(self):
        path = write_jsonl(self.entries, self.tmp.name)
        receipt = self.entries[self.seqs["invalidated"] - 1]["hash"]
        status, out = cli("--file", path, "--receipt", receipt.upper())
        self.assertEqual(status, 0, out)
        n = len(self.entries)
        self.assertIn(f"链校验通过：共 {n} 条，链头 seq {n} hash {self.entries[-1]['hash']}", out)
        self.assertIn("计票一致", out)
        self.assertIn("invalidated（已作废）", out)
        self.assertIn("1. 甲（编号 1）91.00 分", out)
        self.assertIn("2. 乙（编号 2）87.40 分", out)
        self.assertIn("结论：全部一致", out)

    def test_json_report(self):
        path = write_jsonl(self.entries, self.tmp.name)
        status, out = cli("--file", path, "--json", "--campaign", CAMPAIGN)
        report = json.loads(out)
        self.assertEqual((status, report["ok"], report["exit_status"]), (0, True, 0))
        self.assertEqual(report["published"]["seq"], self.seqs["published"])
        self.assertEqual(report["winners"][0]["candidates"][0]["score"], "91.00")
        self.assertEqual(report["votes"]["12"], 300)

    def test_a_bad_export_exits_1_with_the_seq(self):
        e = copy.deepcopy(self.entries)
        e[8]["body"]["candidate"]["status"] = "approved"  # seq 9, candidate 16
        path = write_jsonl(e, self.tmp.name)
        status, out = cli("--file", path)
        self.assertEqual(status, 1)
        self.assertIn("不一致：seq 9：hash 不符", out)
        status, out = cli("--file", path, "--json")
        self.assertEqual(json.loads(out)["problem"]["seq"], 9)

    def test_a_line_that_is_not_json(self):
        path = write_jsonl(self.entries[:3], self.tmp.name)
        with open(path, "a", encoding="utf-8") as f:
            f.write('{"seq": 4, "kind": \n')
        status, out = cli("--file", path)
        self.assertEqual(status, 1)
        self.assertIn("seq 4", out)

    def test_a_float_in_the_export(self):
        c = Chain()
        c.campaign()
        path = write_jsonl(c.entries, self.tmp.name)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"seq": 2, "kind": "rating", "body": {"kind": "rating",
                                "level": 1.0}, "prev_hash": c.entries[0]["hash"],
                                "hash": ZERO}) + "\n")
        status, out = cli("--file", path)
        self.assertEqual(status, 1)
        self.assertIn("seq 2：条目含浮点数", out)

    def test_a_receipt_not_on_the_chain_exits_1(self):
        path = write_jsonl(self.entries, self.tmp.name)
        status, out = cli("--file", path, "--receipt", "cd" * 32)
        self.assertEqual(status, 1)
        self.assertIn("不在链上", out)

    def test_another_campaign(self):
        path = write_jsonl(self.entries, self.tmp.name)
        status, out = cli("--file", path, "--campaign", "6")
        self.assertEqual(status, 1)
        self.assertIn("seq 1：", out)

    def test_usage_errors_exit_2(self):
        for argv in ([], ["--file", "x", "--base-url", "http://h"], ["--base-url", "http://h"],
                     ["--file", "x", "--receipt", "zz"], ["--file", "x", "--token", "t"]):
            with self.subTest(argv=argv), self.assertRaises(SystemExit) as cm, \
                    _quiet_stderr():
                vr.main(argv, out=io.StringIO())
            self.assertEqual(cm.exception.code, 2)
        with _quiet_stderr():
            self.assertEqual(cli("--file", os.path.join(self.tmp.name, "missing.jsonl"))[0], 2)


class _quiet_stderr:
    def __enter__(self):
        self.saved, sys.stderr = sys.stderr, io.StringIO()

    def __exit__(self, *exc):
        sys.stderr = self.saved
        return False


class FakeService:
    """A stand-in for the service's public audit endpoints, on a local port."""

    def __init__(self, entries, results=None, head=None, token=None, limit_cap=1000,
                 int_cursor=False):
        self.entries = entries
        self.results = results
        self.head = head
        self.token = token
        self.limit_cap = limit_cap
        self.int_cursor = int_cursor
        self.seen_auth = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                service.seen_auth.append(self.headers.get("Authorization"))
                url = urllib.parse.urlparse(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                base = f"/api/v1/campaigns/{CAMPAIGN}"
                if url.path == base + "/audit/entries":
                    if service.token and self.headers.get("Authorization") != \
                            f"Bearer {service.token}":
                        return self.send(409, {"error": {"code": "audit_entries_hidden",
                                                         "message": "…"}})
                    after, limit = int(q["after_seq"]), min(int(q["limit"]), service.limit_cap)
                    items = [e for e in service.entries if e["seq"] > after][:limit]
                    cursor = items[-1]["seq"] if len(items) == limit else None
                    if cursor is not None and not service.int_cursor:
                        cursor = str(cursor)
                    return self.send(200, {"items": items, "next_cursor": cursor})
                if url.path == base + "/audit/head":
                    last = service.entries[-1] if service.entries else {"seq": 0, "hash": ZERO}
                    return self.send(200, service.head or {"seq": last["seq"],
                                                           "hash": last["hash"]})
                if url.path == base + "/results" and service.results is not None:
                    return self.send(200, service.results)
                return self.send(404, {"error": {"code": "results_not_published",
                                                 "message": "…"}})

            def send(self, code, value):
                data = json.dumps(value, ensure_ascii=False).encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def published_view(entries, seq):
    body = entries[seq - 1]["body"]
    return {"campaign_id": CAMPAIGN, "stage": "final", "results": body["results"],
            "snapshot_hash": body["snapshot_hash"], "audit_head": body["audit_head"],
            "seq": seq, "published_at": "2026-12-01T10:00:00+08:00"}


class HttpCliTest(unittest.TestCase):
    def setUp(self):
        self.entries, self.seqs = worked_chain()
        self.services = []

    def tearDown(self):
        for s in self.services:
            s.close()

    def serve(self, entries=None, **kw):
        s = FakeService(self.entries if entries is None else entries, **kw)
        self.services.append(s)
        return s

    def test_a_published_campaign_over_http_in_pages(self):
        s = self.serve(results=published_view(self.entries, self.seqs["published"]),
                       limit_cap=100)  # several pages, next_cursor as a string
        status, out = cli("--base-url", s.url + "/", "--campaign", CAMPAIGN)
        self.assertEqual(status, 0, out)
        self.assertIn("/audit/head：一致", out)
        self.assertIn("/results：一致", out)

    def test_next_cursor_as_a_number(self):
        s = self.serve(self.entries[:250], limit_cap=50, int_cursor=True)
        status, out = cli("--base-url", s.url, "--campaign", CAMPAIGN, "--json")
        self.assertEqual(status, 0, out)
        self.assertEqual(json.loads(out)["entries"], 250)

    def test_results_edited_in_the_service_only(self):
        view = published_view(self.entries, self.seqs["published"])
        view = copy.deepcopy(view)
        view["results"]["categories"][0]["candidates"][0]["score"] = "99.00"
        s = self.serve(results=view)
        status, out = cli("--base-url", s.url, "--campaign", CAMPAIGN)
        self.assertEqual(status, 1)
        self.assertIn(f"seq {self.seqs['published']}", out)
        self.assertIn("score", out)

    def test_a_published_chain_but_no_results(self):
        s = self.serve()
        status, out = cli("--base-url", s.url, "--campaign", CAMPAIGN)
        self.assertEqual(status, 1)
        self.assertIn("404", out)

    def test_an_unpublished_campaign(self):
        entries = self.entries[:self.seqs["draft"]]
        s = self.serve(entries)
        status, out = cli("--base-url", s.url, "--campaign", CAMPAIGN)
        self.assertEqual(status, 0, out)
        self.assertIn("尚未公布", out)

    def test_a_head_beyond_the_entries(self):
        entries = self.entries[:-1]
        s = self.serve(entries, head={"seq": len(self.entries), "hash": self.entries[-1]["hash"]})
        status, out = cli("--base-url", s.url, "--campaign", CAMPAIGN, "--json")
        report = json.loads(out)
        self.assertEqual(status, 1)
        self.assertEqual(report["problem"]["seq"], len(self.entries))

    def test_a_head_with_another_hash(self):
        s = self.serve(self.entries[:20], head={"seq": 20, "hash": "ee" * 32})
        status, out = cli("--base-url", s.url, "--campaign", CAMPAIGN)
        self.assertEqual(status, 1)
        self.assertIn("seq 20", out)

    def test_staff_token_for_hidden_entries(self):
        s = self.serve(self.entries[:30], token="s3cret")
        with _quiet_stderr():
            status, _ = cli("--base-url", s.url, "--campaign", CAMPAIGN)
        self.assertEqual(status, 2)
        status, out = cli("--base-url", s.url, "--campaign", CAMPAIGN, "--token", "s3cret")
        self.assertEqual(status, 0, out)
        self.assertIn("Bearer s3cret", s.seen_auth)

    def test_network_errors_exit_2(self):
        s = self.serve()
        url = s.url
        s.close()
        self.services.remove(s)
        status, out = cli("--base-url", url, "--campaign", CAMPAIGN, "--json")
        self.assertEqual(status, 2)
        self.assertEqual(json.loads(out)["exit_status"], 2)


if __name__ == "__main__":
    unittest.main()


class EvaluationRecount(unittest.TestCase):
    """An evaluation's scores, worked by hand (the example of the README)."""

    def test_rates_and_weighted_scores(self):
        campaign = {"id": "9", "title": "万人双评议", "kind": "evaluation", "rules": {}}
        targets = {
            "1": {"id": "1", "code": "H01", "name": "医院", "parent_id": None},
            "2": {"id": "2", "code": "H01-JZ", "name": "急诊科", "parent_id": "1"},
        }
        # Citizens (weight 40): 3 满意 + 1 基本满意 → 90; a supervisor (weight 10): 不满意 → 0.
        ratings = {("1", "public"): [4, 3, 1, 0], ("1", "supervisor"): [1, 0, 0, 1]}
        r = vr.compute_evaluation_results(campaign, targets, ratings, "final")
        hospital, department = r["evaluation"]["targets"]
        self.assertEqual((hospital["rated"], hospital["satisfaction_rate"],
                          hospital["weighted_score"]), (5, "0.8000", "72.00"))
        self.assertEqual([g["group"] for g in hospital["groups"]], ["public", "supervisor"])
        self.assertEqual((department["rated"], department["satisfaction_rate"],
                          department["weighted_score"]), (0, None, None))
        self.assertNotIn("method", r)

    def test_rounding_is_half_up_once(self):
        campaign = {"id": "9", "title": "t", "kind": "evaluation", "rules": {}}
        targets = {"1": {"id": "1", "code": "A", "name": "A", "parent_id": None}}
        # 2 满意 + 1 基本满意 of 3 citizens: 260 / 3 = 86.666… → 86.67; rate 1.0000.
        ratings = {("1", "public"): [3, 2, 1, 0]}
        t = vr.compute_evaluation_results(campaign, targets, ratings, "final")
        t = t["evaluation"]["targets"][0]
        self.assertEqual((t["weighted_score"], t["satisfaction_rate"]), ("86.67", "1.0000"))
