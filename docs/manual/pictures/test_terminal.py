import terminal


def test_text_is_escaped():
    assert terminal.to_html("a <b> & c") == "a &lt;b&gt; &amp; c"


def test_bold_and_colours_become_spans_and_are_closed():
    assert terminal.to_html("\x1b[1mk8s:\x1b[0m ok") == '<span style="font-weight:bold">k8s:</span> ok'
    assert terminal.to_html("\x1b[1;32mgreen") == (
        '<span style="font-weight:bold"><span style="color:#98c379">green</span></span>')


def test_other_escapes_are_dropped():
    assert terminal.to_html("a\x1b[2Kb\x1b[1Ac") == "abc"


def test_page_has_title_and_caption():
    html = terminal.page("x", "$ tools/bazel run //:demo", "capturado")
    assert "<b>$ tools/bazel run //:demo</b>" in html and "capturado" in html and "<pre>x</pre>" in html
