"""docs/course/: one lab per course module, each a script with its page, every page linked from
the index, and every figure or results page a page links present in the repository."""

from tests.course._lab import COURSE, LINK


def labs():
    return sorted(path.stem for path in COURSE.glob("m[1-9]_*.py"))


def test_one_lab_per_module_each_with_its_page():
    modules = sorted(int(name[1]) for name in labs())
    assert modules == list(range(1, 10)), modules
    for name in labs():
        page = COURSE / (name.replace("_", "-") + ".md")
        assert page.is_file(), f"{name}.py has no page {page.name}"
        assert f"python docs/course/{name}.py" in page.read_text(), f"{page.name}: no command"


def test_the_index_links_every_page():
    index = (COURSE / "README.md").read_text()
    for name in labs():
        assert f"({name.replace('_', '-')}.md)" in index, f"README.md does not link {name}"


def test_every_local_link_resolves():
    for page in [COURSE / "README.md", *COURSE.glob("m[1-9]-*.md"), *COURSE.glob("results/*.md")]:
        for target in LINK.findall(page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links a missing {target}"
