"""The example project's settings: the omnihook app and where its router and token are."""

import os

SECRET_KEY = "example-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "django_app.urls"
INSTALLED_APPS = ["omnihook.receiver.django"]  # brings manage.py omnihook_worker / omnihook_events
MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]  # the webhook view is exempt
OMNIHOOK = {
    "ROUTER": "django_app.hooks:router",
    "TOKENS": [os.environ.get("OMNIHOOK_TOKEN", "s3cret")],
}
