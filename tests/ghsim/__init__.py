"""A local GitHub REST API simulator for end-to-end tests and benchmarks.

    from tests.ghsim import GitHubSimulator
    with GitHubSimulator() as sim:
        repo = sim.repo("octo-org/governance")
        pr = repo.add_pull(title="RFC: widgets", author="alice", files={"rfcs/0001.md": "..."})
        gh = Github(base_url=sim.base_url, auth=Auth.Token("t"),
                    seconds_between_requests=0, seconds_between_writes=0)
        ...
        assert [c.body for c in repo.comments_on(pr.number)] == [...]

See ``GitHubSimulator`` for seeding, faults and inspection; the pytest fixture ``ghsim``
(tests/conftest.py) gives a started one per test.
"""

from tests.ghsim.faults import Fault
from tests.ghsim.server import GitHubSimulator, LoggedRequest
from tests.ghsim.state import Repo, World, blob_sha

__all__ = ["Fault", "GitHubSimulator", "LoggedRequest", "Repo", "World", "blob_sha"]
