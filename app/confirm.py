"""The confirmation page every destructive POST answers until its form says confirmed=1.

With JavaScript, the button's `data-confirm` dialog asks first and adds `confirmed=1` (see
static/castor.js), so the page never shows; without it, this page asks in words and re-posts
the same fields (CSRF token included) with `confirmed=1`.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import render_template, request


def confirmed() -> bool:
    """Tell whether the posted form carries the user's confirmation."""
    return request.form.get("confirmed") == "1"


def confirmation_page(question: str, consequence: str, *, back: str, button: str = "Delete",
                      back_label: str = "Cancel", items: Sequence[str] = ()) -> str | None:
    """Return the page asking `question` unless the POST is confirmed (then None: go ahead).

    `consequence` says in words what is destroyed, `items` lists the objects concerned,
    `back` is where the Cancel link (`back_label`) leads.
    """
    if confirmed():
        return None
    fields = [(name, value) for name, value in request.form.items(multi=True)
              if name != "confirmed"]
    target = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
    return render_template("confirm.html", question=question, consequence=consequence,
                           button=button, back_label=back_label, items=items, fields=fields,
                           target=target, back=back)
