import re
from html.parser import HTMLParser

from peerlens.narrative import analyze, render_html


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


# the middle sentence is downward by guidelines B2-4 and rule 3 (what the other still has, set
# against people who have nothing); since the batch 1-12 model, a bare "at least you still have
# your family & a flat." after a sameness sentence falls under the downward threshold (a miss,
# docs/story.md), so the story states the comparison whole
STORY = (
    'I felt that too <script>alert("x")</script>. At least you still have your family & a flat, '
    "some people have nobody. Shall we meet on Tuesday?"
)


def _page() -> tuple[str, _Collect]:
    page = render_html(analyze(STORY, source="<story>.txt"))
    parser = _Collect()
    parser.feed(page)
    return page, parser


def test_user_text_is_escaped() -> None:
    page, parser = _page()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "&amp; a flat" in page
    assert "&lt;story&gt;.txt" in page
    assert not any(tag == "script" for tag, _ in parser.tags)


def test_self_contained() -> None:
    page, parser = _page()
    for tag, attrs in parser.tags:
        assert tag not in ("link", "img", "iframe")
        for name in ("src", "href"):
            assert attrs.get(name) is None, (tag, attrs)
    assert "@import" not in page and "url(" not in page


def test_summary_leads_and_labels_are_text_not_colour_only() -> None:
    page, parser = _page()
    assert page.index("Session summary") < page.index("Sentence by sentence")
    items = [attrs for tag, attrs in parser.tags if tag == "li" and "tabindex" in attrs]
    assert len(items) == 3
    # no aria-label: screen readers read the visible label text and then the sentence itself
    assert all("aria-label" not in a for a in items)
    # the visible tag text carries the label, so print and screen readers get it without colour
    assert re.search(r'class="tag t-downward"><span aria-hidden="true">.</span> Downward', page)


def test_hint_is_tied_to_its_sentence_and_printed() -> None:
    page, parser = _page()
    described = [a for tag, a in parser.tags if tag == "li" and a.get("aria-describedby")]
    assert len(described) == 1
    hint_id = described[0]["aria-describedby"]
    assert any(a.get("id") == hint_id and a.get("role") == "note" for _, a in parser.tags)
    # the hint is text in the page (not a hover-only title tooltip), labelled as a hint
    assert "title" not in described[0]
    hint = re.search(rf'id="{hint_id}" role="note">(.*?)</span>\s*</li>', page, re.S)
    assert hint is not None and "Hint:" in hint.group(1) and "At least" in hint.group(1)
    # shown by default; folding is opt-in via a labelled checkbox (keyboard-operable, no script)
    assert ".hint { display: block" in page
    fold = [a for tag, a in parser.tags if tag == "input" and a.get("id") == "fold-hints"]
    assert fold and fold[0].get("type") == "checkbox" and "checked" not in fold[0]
    assert '<label for="fold-hints"' in page
    # printed in full even when folded on screen; the fold control is not printed
    print_css = page[page.index("@media print") :]
    assert "display: block !important" in print_css and ".fold { display: none; }" in print_css
    assert '<html lang="en">' in page


def test_unsupported_sentences_listed_apart_with_their_language() -> None:
    story = (
        "I felt that too when I was first diagnosed. "
        "Moi aussi, j'ai eu des moments très difficiles quand j'étais à l'hôpital."
    )
    result = analyze(story)
    page = render_html(result)
    assert "Not analysed (not English)" in page
    assert '<span lang="fr">Moi aussi' in page
    assert "looks like French" in page
    assert result.model_version in page


def test_ci_method_is_named() -> None:
    page = render_html(analyze("I felt that too. At least you have a job."))
    assert "95% CI 0.09 to 0.91; Wilson interval: too few sentences for a bootstrap" in page
