import pytest

from tally_load.profiles import Phase, parse_duration, plan


def test_profiles_offer_both_routes_the_same_load():
    steady = plan("steady")
    assert steady.phases == (Phase(50, 60),) and steady.rate == 5.0
    assert steady.offered_votes == 50 * 60 * 5.0
    spike = plan("spike", users=100, seconds=30)
    assert spike.phases == (Phase(10, 10), Phase(100, 10), Phase(10, 10))
    assert spike.offered_votes == (10 + 100 + 10) * 10 * 5.0
    assert plan("smoke", users=3, rate=1.5, seconds=8).phases == (Phase(3, 8),)
    assert "per route 3 users for 8 s (4.5 votes/s)" in plan("smoke", users=3, rate=1.5, seconds=8).describe()
    with pytest.raises(ValueError, match="unknown profile"):
        plan("stress")
    with pytest.raises(ValueError):
        plan("smoke", users=0)


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("2m", 120), ("1h", 3600), ("1m30s", 90), ("0.5s", 0.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "1x", "-5s", "1s2m"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_the_assignment_profile_sends_the_2x2_mockaroo_export():
    from tally_load.profiles import PROFILES

    assert PROFILES["assignment"].votes == "mockaroo_2x2.json"
    assert {p.votes for name, p in PROFILES.items() if name != "assignment"} == {"votes.csv"}
    assignment = plan("assignment")
    assert assignment.phases == (Phase(25, 60),) and assignment.rate == 4.0
