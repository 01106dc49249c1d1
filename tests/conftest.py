"""Shared test settings: one thread is fastest for these small models; a failed browser test shows
the page's text."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """A failed browser test's report shows what the page showed then: its address and its text."""
    report = yield
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and hasattr(page, "evaluate"):
        try:
            text = page.evaluate("() => document.body.innerText")
            report.sections.append(("the page when the test failed", f"{page.url}\n{text[:PAGE_TEXT_CHARS]}"))
        except Exception as error:  # the page may be gone; the failure itself still shows
            report.sections.append(("the page when the test failed", f"unreadable: {error}"))
    return report


PAGE_TEXT_CHARS = 3000
