"""Server-side SVG bar charts: well-formed, proportional, escaped, with the limit drawn or named."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from authserver.web.charts import Bar, bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(chart) -> ET.Element:
    return ET.fromstring(str(chart))  # raises on anything that is not well-formed XML


def bar_heights(svg: ET.Element) -> list[float]:
    return [float(rect.get("height")) for rect in svg.iter(f"{SVG}rect")]


def test_bars_are_proportional_to_their_values():
    svg = parse(bar_chart([Bar("a", 10, "a"), Bar("b", 5, "b"), Bar("c", 0, "c")], title="Requests"))
    tall, half, empty = bar_heights(svg)
    assert tall == pytest.approx(2 * half) and empty == 0 and tall > 0


def test_the_chart_is_labelled_for_screen_readers():
    svg = parse(bar_chart([Bar("14:00", 7, "14:00: 7 requests")], title="Requests per hour"))
    assert svg.get("role") == "img"
    assert svg.find(f"{SVG}title").text == "Requests per hour"
    assert "7 requests in all" in svg.find(f"{SVG}desc").text
    assert [title.text for title in svg.iter(f"{SVG}title")][1:] == ["14:00: 7 requests"]


def test_hostile_labels_render_as_text():
    chart = bar_chart([Bar("<script>alert(1)</script>", 1, '"><img src=x onerror=alert(1)>')], title="<b>t</b>")
    assert "<script>" not in str(chart) and "<img" not in str(chart) and "<b>" not in str(chart)
    svg = parse(chart)
    assert svg.find(f"{SVG}title").text == "<b>t</b>"


def test_a_limit_within_reach_is_drawn_on_the_scale():
    svg = parse(bar_chart([Bar("a", 40, "a")], title="Requests", limit=50, limit_label="burst"))
    limit_lines = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "chart-limit"]
    assert len(limit_lines) == 1
    (bar,) = bar_heights(svg)
    plot_bottom = float(next(svg.iter(f"{SVG}rect")).get("y")) + bar
    limit_height = plot_bottom - float(limit_lines[0].get("y1"))
    assert limit_height == pytest.approx(bar * 50 / 40)


def test_a_limit_far_above_the_usage_is_named_not_drawn():
    svg = parse(bar_chart([Bar("a", 3, "a")], title="Requests", limit=1000, limit_label="hourly limit"))
    assert not [line for line in svg.iter(f"{SVG}line") if line.get("class") == "chart-limit"]
    labels = [text.text for text in svg.iter(f"{SVG}text") if text.get("class") == "chart-limit-label"]
    assert labels == ["hourly limit 1,000 (above the scale)"]


def test_an_empty_period_still_renders():
    svg = parse(bar_chart([Bar(str(hour), 0, "none") for hour in range(24)], title="Requests", limit=50))
    assert bar_heights(svg) == [0.0] * 24
