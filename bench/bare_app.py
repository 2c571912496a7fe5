"""The floor a real page is compared with: a bare Flask app that renders 30
project rows read from PostgreSQL through the SQLAlchemy ORM.

No tenancy hooks, no sign-in, no sessions, no CSRF, no RLS (it connects as
the owner): one query and one template. ``bench/page_bench.py`` serves it
under gunicorn exactly like the real app and loads it with the same wrk run.

    BARE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/tenantry_bench \\
    BARE_ORG_ID=<uuid> .venv/bin/gunicorn -w 2 -b 127.0.0.1:8001 bench.bare_app:app
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime

from flask import Flask, render_template_string
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, String, Text, func, select
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BARE_DATABASE_URL"]
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 5}
db = SQLAlchemy(app)
ORG_ID = uuid.UUID(os.environ["BARE_ORG_ID"])


class Project(db.Model):
    __tablename__ = "projects"

    organization_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Projects</title></head>
<body><h1>Projects</h1>
<table><thead><tr><th>Name</th><th>Status</th><th>Updated</th></tr></thead><tbody>
{% for p in rows %}<tr><td><a href="/projects/{{ p.id }}">{{ p.name }}</a>
<div>{{ p.description|truncate(90) }}</div></td><td>{{ p.status }}</td>
<td>{{ p.updated_at.strftime("%Y-%m-%d %H:%M") }}</td></tr>
{% endfor %}</tbody></table></body></html>"""


@app.get("/")
def index():
    rows = (
        db.session.execute(
            select(Project)
            .where(Project.organization_id == ORG_ID, Project.status == "active")
            .order_by(func.lower(Project.name), Project.id)
            .limit(30)
        )
        .scalars()
        .all()
    )
    return render_template_string(PAGE, rows=rows)
