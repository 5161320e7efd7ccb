import math

from tally_load.promtext import parse, server_time

BEFORE = """# TYPE tally_http_request_duration_seconds histogram
tally_http_request_duration_seconds_bucket{path="/votes",le="0.001"} 0
tally_http_request_duration_seconds_bucket{path="/votes",le="0.002"} 10
tally_http_request_duration_seconds_bucket{path="/votes",le="+Inf"} 10
tally_http_request_duration_seconds_sum{path="/votes"} 0.015
tally_http_request_duration_seconds_count{path="/votes"} 10
tally_http_request_duration_seconds_count{path="/readyz"} 99
"""
AFTER = """tally_http_request_duration_seconds_bucket{path="/votes",le="0.001"} 50
tally_http_request_duration_seconds_bucket{path="/votes",le="0.002"} 108
tally_http_request_duration_seconds_bucket{path="/votes",le="0.004"} 109
tally_http_request_duration_seconds_bucket{path="/votes",le="+Inf"} 110
tally_http_request_duration_seconds_sum{path="/votes"} 0.165
tally_http_request_duration_seconds_count{path="/votes"} 110
"""


def test_server_time_over_the_run():
    t = server_time(parse(BEFORE), parse(AFTER))
    assert t.votes == 100
    assert math.isclose(t.mean_ms, 1.5)  # 0.150 s over 100 votes
    assert t.p99_le_ms == 4.0  # 99 of the 100 fall at or under the 4 ms bucket


def test_nothing_answered():
    t = server_time(parse(AFTER), parse(AFTER))
    assert t.votes == 0 and math.isnan(t.mean_ms) and math.isnan(t.p99_le_ms)
