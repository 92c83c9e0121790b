from civicam.analytics.suitability import SuitabilityWindow, assess


def test_suitability() -> None:
    assert not assess([60.0] * 5).suitable  # too few
    assert assess([60.0] * 30).suitable
    v = assess([25.0] * 30)
    assert not v.suitable and "median face height 25px" in v.reason
    w = SuitabilityWindow(size=50)
    w.add([20.0] * 50)
    w.add([80.0] * 30)
    assert w.verdict().suitable and w.verdict().faces_seen == 50
