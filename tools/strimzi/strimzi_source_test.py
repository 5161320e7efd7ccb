"""strimzi_source.py on small inputs, and the overrides and Kafka versions on Strimzi's real tree."""

import os
import re

import pytest

import strimzi_source

POM = """\
<project>
  <properties>
    <client.version>7.8.0</client.version>
    <model.version>7.8.0</model.version>
  </properties>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>io.fabric8</groupId>
        <artifactId>openshift-model</artifactId>
        <version>${model.version}</version>
      </dependency>
      <dependency>
        <groupId>io.fabric8</groupId>
        <artifactId>kubernetes-model-core</artifactId>
        <version>${model.version}</version>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>io.fabric8</groupId>
      <artifactId>openshift-model</artifactId>
    </dependency>
  </dependencies>
</project>
"""


def override(upstream="7.8.0", artifact="openshift-model"):
    return {"group": "io.fabric8", "artifact": artifact, "upstream": upstream, "ours": "7.7.0", "why": "not served"}


def test_override_rewrites_only_that_managed_dependency():
    out = strimzi_source.apply_overrides(POM, [override()])
    assert out.count("<version>7.7.0</version>") == 1
    assert out == POM.replace("<version>${model.version}</version>", "<version>7.7.0</version>", 1)


def test_override_refuses_a_pom_that_moved_on():
    with pytest.raises(ValueError, match="not 7.6.0"):
        strimzi_source.apply_overrides(POM, [override(upstream="7.6.0")])


def test_override_refuses_an_artifact_that_is_not_managed():
    with pytest.raises(ValueError, match="0 managed dependencies"):
        strimzi_source.apply_overrides(POM, [override(artifact="openshift-client")])


def test_read_overrides_refuses_a_line_without_a_reason(tmp_path):
    path = tmp_path / "overrides.txt"
    path.write_text("# comment\n\nio.fabric8:openshift-model 7.8.0 7.7.0\n")
    with pytest.raises(ValueError, match=":3: want"):
        strimzi_source.read_overrides(str(path))


def test_kafka_versions_lists_the_supported_ones_with_their_maven_version():
    text = """\
# comment
- version: 4.2.0
  metadata: 4.2-IV1
  supported: false
- version: 4.3.0
  supported: true # trailing comment
  default: false
- version: 4.3.1
  maven-version: 4.3.1-x
  supported: true
"""
    assert strimzi_source.kafka_versions(text) == [("4.3.0", "4.3.0"), ("4.3.1", "4.3.1-x")]


def test_kafka_versions_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match=":2:"):
        strimzi_source.kafka_versions("- version: 1\n    nested: 2\n")


def test_digest_changes_with_content_mode_and_links(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    first = strimzi_source.tree_digest(str(tmp_path))
    os.chmod(tmp_path / "a" / "f", 0o755)
    executable = strimzi_source.tree_digest(str(tmp_path))
    (tmp_path / "l").symlink_to("a")
    linked = strimzi_source.tree_digest(str(tmp_path))
    (tmp_path / "a" / "f").write_text("y")
    changed = strimzi_source.tree_digest(str(tmp_path))
    assert len({first, executable, linked, changed}) == 4
    (tmp_path / "empty").mkdir()
    assert strimzi_source.tree_digest(str(tmp_path)) == changed


def strimzi_file(name):
    """A file of Strimzi's real tree (@strimzi_source), which the BUILD file names in STRIMZI_SRC_TREE."""
    return os.path.join(os.environ["STRIMZI_SRC_TREE"], name)


def test_the_overrides_fit_strimzis_pom():
    with open(strimzi_file("pom.xml"), encoding="utf-8") as f:
        pom = f.read()
    overrides = strimzi_source.read_overrides(os.environ["OVERRIDES"])
    out = strimzi_source.apply_overrides(pom, overrides)
    for o in overrides:
        assert f"<artifactId>{o['artifact']}</artifactId>\n                <version>{o['ours']}</version>" in out
    assert len(out) < len(pom)


def test_strimzis_supported_kafka_versions_include_the_image_one():
    with open(strimzi_file("kafka-versions.yaml"), encoding="utf-8") as f:
        versions = strimzi_source.kafka_versions(f.read())
    assert ("4.3.1", "4.3.1") in versions
    assert len(versions) >= 2
    # The broker image's Kafka (the build keeps only it) is one Strimzi supports.
    with open(os.environ["BROKER_POM"], encoding="utf-8") as f:
        kafka = re.search(r"<kafka.version>(.*)</kafka.version>", f.read()).group(1)
    assert kafka in [v for v, _ in versions]


def test_only_kafka_leaves_one_supported_version():
    text = "- version: 4.3.0\n  supported: true\n- version: 4.3.1\n  supported: true # the default\n"
    out = strimzi_source.only_kafka(text, "4.3.1")
    assert out == "- version: 4.3.0\n  supported: false\n- version: 4.3.1\n  supported: true # the default\n"
    assert strimzi_source.kafka_versions(out) == [("4.3.1", "4.3.1")]


def test_only_kafka_refuses_a_version_strimzi_does_not_support():
    with pytest.raises(ValueError, match="4.1.0 is not a supported version"):
        strimzi_source.only_kafka("- version: 4.1.0\n  supported: false\n", "4.1.0")


def test_drop_removes_the_dependency_from_every_pom(tmp_path):
    dep = ("<dependency>\n  <groupId>io.example</groupId>\n  <artifactId>gone</artifactId>\n"
           "  <scope>test</scope>\n</dependency>")
    kept = "<dependency>\n  <groupId>io.example</groupId>\n  <artifactId>kept</artifactId>\n</dependency>"
    (tmp_path / "pom.xml").write_text(f"<project>{dep}{kept}</project>")
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "pom.xml").write_text(f"<project>{dep}</project>")
    dropped = [{"group": "io.example", "artifact": "gone", "why": "absent"}]
    assert sorted(strimzi_source.drop(str(tmp_path), dropped)) == ["mod/pom.xml", "pom.xml"]
    assert (tmp_path / "pom.xml").read_text() == f"<project>{kept}</project>"
    with pytest.raises(ValueError, match="no pom names it"):
        strimzi_source.drop(str(tmp_path), dropped)


def test_the_dropped_dependencies_are_in_strimzis_tree(tmp_path):
    import shutil
    src = tmp_path / "src"
    shutil.copytree(os.environ["STRIMZI_SRC_TREE"], src, symlinks=True)
    changed = strimzi_source.drop(str(src), strimzi_source.read_dropped(os.environ["DROPPED"]))
    assert "pom.xml" in changed and "cluster-operator/pom.xml" in changed
