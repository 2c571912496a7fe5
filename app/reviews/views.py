"""Access reviews (``reviews:manage``: Owners and Admins).

* ``/reviews/``: every campaign with its progress; overdue ones flagged;
* ``/reviews/new`` → ``POST /reviews/``: start a campaign (one-time key:
  a double submit starts one);
* ``/reviews/<id>``: each member's access as it was when the campaign
  started, and per row **Keep**, **Change role** or **Remove** (HTMX swaps
  the row; without JavaScript the page reloads);
* ``POST /reviews/<id>/items/<user_id>``: one decision, applied through the
  members services; a refusal (not a reviewer: 403; a guardrail: 422; a
  decision made meanwhile by another reviewer: 409) is shown on the row;
* ``POST /reviews/<id>/close``; ``/reviews/<id>/evidence`` (printable
  summary) and ``POST /reviews/<id>/evidence.csv`` (audited).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, request, url_for
from flask_login import login_required

from app import concurrency
from app.errors import StaleEdit, UserError
from app.extensions import db
from app.permissions import PERMISSIONS
from app.rbac import services as rbac
from app.rbac.decorators import require
from app.reviews import services
from app.reviews.forms import CloseForm, DecisionForm, NewReviewForm
from app.reviews.models import DECISIONS, RECURRENCE_LABELS
from app.web import nav
from app.web.downloads import download
from app.web.forms import with_error
from app.web.htmx import is_htmx, render

bp = Blueprint("reviews", __name__, url_prefix="/reviews")
nav.link(bp, "index", "Access reviews", section="admin", order=34)


def _review_or_404(review_id):
    return services.find_review(review_id) or abort(404)


def _new_form() -> NewReviewForm:
    form = NewReviewForm()
    form.permissions.choices = [(p.name, f"{p.name} — {p.description}") for p in PERMISSIONS]
    form.reviewers.choices = [(str(m.user_id), f"{m.user.name} ({m.role_name})") for m in services.eligible_reviewers()]
    if request.method == "GET":
        form.reviewers.data = [str(g.membership.user_id)]
    return form


@bp.get("/")
@login_required
@require("reviews:manage")
def index():
    """Every campaign: open ones by deadline (overdue flagged), then closed ones."""
    return render(
        "reviews/index.html",
        reviews=services.list_reviews(),
        today=services.today(),
        recurrences=RECURRENCE_LABELS,
    )


@bp.get("/new")
@login_required
@require("reviews:manage")
def new():
    """The form that starts a campaign (you are suggested as its reviewer)."""
    return render("reviews/new.html", form=_new_form())


@bp.post("/")
@login_required
@require("reviews:manage")
def create():
    """Start a campaign; bad input is 422 beside the field, nothing created.
    A second submit of the same form lands on the campaign the first started."""
    form = _new_form()
    if not form.validate():
        return render("reviews/new.html", form=form, status=422)
    first = concurrency.claim_submit_key(form.submit_key.data)
    if first is not None:
        db.session.commit()
        return redirect(first or url_for("reviews.index"))
    try:
        plan = services.check_plan(
            form.name.data,
            form.scope.data,
            form.permissions.data,
            form.reviewers.data,
            form.deadline.data,
            form.recurrence.data,
        )
        review = services.start_review(plan, g.membership)
    except UserError as e:
        db.session.rollback()
        return render("reviews/new.html", form=with_error(form, e), status=e.status)
    concurrency.settle_submit_key(form.submit_key.data, url_for("reviews.show", review_id=review.id))
    stuck = services.undecidable(review)
    db.session.commit()
    flash(f"Review “{review.name}” started.", "success")
    if stuck:
        flash(
            f"{', '.join(stuck)} cannot decide on their own access and nobody else here can review: "
            "that row stays pending (reported as not reviewed) unless another Owner or Admin reviews it "
            "in a later campaign.",
            "warning",
        )
    return redirect(url_for("reviews.show", review_id=review.id))


def _show_context(review) -> dict:
    reviewers = services.reviewer_ids(review)
    return {
        "review": review,
        "items": services.items_of(review),
        "counts": services.progress(review),
        "is_reviewer": g.membership.user_id in reviewers and services.PERMISSION in g.membership.permissions,
        "reviewer_names": _reviewer_names(reviewers),
        "role_choices": rbac.role_choices(g.membership),
        "today": services.today(),
        "decisions": DECISIONS,
        "recurrences": RECURRENCE_LABELS,
        "next_start": services.next_start(review),
        "close_form": CloseForm(),
        "me": g.membership.user_id,
        "undecidable": services.undecidable(review, reviewers) if review.is_open else [],
    }


def _reviewer_names(ids) -> list[str]:
    return services.reviewer_names(ids)


@bp.get("/<review_id>")
@login_required
@require("reviews:manage")
def show(review_id):
    """The campaign: progress, and each member's access with the decision controls (reviewers only)."""
    review = _review_or_404(review_id)
    return render("reviews/show.html", **_show_context(review))


def _row(review, item, status: int = 200, form=None, error: str | None = None, note: str | None = None):
    """One item's row (HTMX) or the whole page with the row's message (no JavaScript)."""
    ctx = {
        "review": review,
        "item": item,
        "row_form": form,
        "row_error": error,
        "row_note": note,
        "role_choices": rbac.role_choices(g.membership),
        "decisions": DECISIONS,
        "is_reviewer": services.is_reviewer(review, g.membership),
        "me": g.membership.user_id,
    }
    if is_htmx():
        return render("reviews/_item.html", status=status, **ctx)
    page = _show_context(review)
    page.update(focus_item=item.user_id, row_form=form, row_error=error, row_note=note)
    return render("reviews/show.html", status=status, **page)


@bp.post("/<review_id>/items/<user_id>")
@login_required
@require("reviews:manage")
def decide(review_id, user_id):
    """Decide on one member: keep, change role (to ``role``) or remove.

    Refused, with the reason on the row and nothing changed: not one of the
    campaign's reviewers, or the reviewer's own row (403); a bad or missing decision, a closed
    campaign, or a guardrail of the members services (422); decided by
    another reviewer since the row was drawn (409, the row showing their
    decision)."""
    review = _review_or_404(review_id)
    item = services.find_item(review, user_id) or abort(404)
    form = DecisionForm()
    form.role.choices = rbac.role_choices(g.membership)
    if not form.validate():
        message = " ".join(form.form_errors or [e for errs in form.errors.values() for e in errs])
        return _row(review, item, 422, form=form, error=message)
    try:
        services.decide(
            review,
            item,
            form.decision.data,
            g.membership,
            role_key=form.role.data,
            note=form.note.data or "",
            version=form.version.data,
        )
    except UserError as e:
        db.session.rollback()
        review = _review_or_404(review_id)
        item = services.find_item(review, user_id) or abort(404)
        message = e.message if not isinstance(e, StaleEdit) else _stale_message(item)
        return _row(review, item, e.status, error=message)
    db.session.commit()
    note = f"{DECISIONS[item.decision]}: recorded" + (" and applied." if item.decision != "keep" else ".")
    if is_htmx():
        return _row(review, item, note=note)
    flash(f"{item.name}: {note}", "success")
    return redirect(url_for("reviews.show", review_id=review.id) + f"#item-{item.user_id}")


def _stale_message(item) -> str:
    if item.decision:
        who = item.decided_by_label or "another reviewer"
        return f"{who} decided on {item.name} while you were looking: {DECISIONS[item.decision].lower()}."
    return "This member's row changed while you were looking; here is what it holds now. Decide again."


@bp.post("/<review_id>/close")
@login_required
@require("reviews:manage")
def close(review_id):
    """Close the campaign: decisions become final; undecided members are
    reported as not reviewed. Reviewers only (403 otherwise)."""
    review = _review_or_404(review_id)
    form = CloseForm()
    if not form.validate():
        return render(
            "reviews/show.html", status=422, close_error="This form expired. Reload the page.", **_show_context(review)
        )
    try:
        counts = services.close(review, g.membership)
    except UserError as e:
        db.session.rollback()
        review = _review_or_404(review_id)
        return render("reviews/show.html", status=e.status, close_error=e.message, **_show_context(review))
    db.session.commit()
    left = counts["pending"]
    flash(
        f"Review “{review.name}” closed." + (f" {left} member{'s' if left != 1 else ''} not reviewed." if left else ""),
        "success",
    )
    return redirect(url_for("reviews.evidence", review_id=review.id))


@bp.get("/<review_id>/evidence")
@login_required
@require("reviews:manage")
def evidence(review_id):
    """The campaign's evidence as a printable page: summary, then every member and decision."""
    review = _review_or_404(review_id)
    ctx = _show_context(review)
    return render("reviews/evidence.html", **ctx)


@bp.post("/<review_id>/evidence.csv")
@login_required
@require("reviews:manage")
def export(review_id):
    """The evidence as CSV (streamed); audited (``review.exported``) and committed before the first byte."""
    review = _review_or_404(review_id)
    form = CloseForm()
    if not form.validate():
        return render("reviews/evidence.html", status=422, **_show_context(review))
    services.record_export(review)
    db.session.commit()
    stream = services.evidence_csv(current_app._get_current_object(), g.org.id, review)
    return download(stream, f"{g.org.slug}-access-review-{review.starts_on.isoformat()}.csv")
