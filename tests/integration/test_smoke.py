from tests.integration.conftest import Api


def test_healthz_answers_serving(api: Api) -> None:
    answer = api.call("GET", "/healthz")
    assert answer.status == 200
    assert answer.body == {"status": "serving"}
