"""Profile workflows on PostgreSQL: create, clone with modules, model match, delete."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Image, ImageProfile, ScriptModule, default_profile_for
from app.modules.domain import KINDS
from app.profiles import assignments, domain
from app.profiles.options import ProfileError

pytestmark = pytest.mark.postgres


def test_profile_workflows_on_postgres(pg_app, tmp_path) -> None:
    with pg_app.app_context():
        image = Image(name="pg-image")
        image.profiles.append(default_profile_for("block", "linux"))
        db.session.add_all([image, ScriptModule(name="s1", contents="true")])
        db.session.commit()
        profile = image.profiles[0]
        script = db.session.scalar(db.select(ScriptModule))
        assignments.assign(profile, KINDS["scripts"], script.id, {"run_when": "after_file_copy"})
        domain.update_profile(profile, image, {"model_match": "M1",
                                               "model_match_criteria": "equals"}, tmp_path)
        db.session.commit()
        copy = domain.clone_profile(profile)
        db.session.commit()
        assert copy.name == "default_1" and copy.model_match == ""
        assert [(a.module.name, a.run_when) for a in copy.scripts] == [("s1", "after_file_copy")]
        with pytest.raises(ProfileError, match="already used"):
            domain.update_profile(copy, image, {"model_match": "M1",
                                                "model_match_criteria": "contains"}, tmp_path)
        db.session.rollback()
        domain.delete_profile(copy)
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count()).select_from(ImageProfile)) == 1
        with pytest.raises(ProfileError, match="last one"):
            domain.delete_profile(profile)
