from django.urls import path

from omnihook.receiver.django import rocketchat_view

urlpatterns = [path("rocketchat", rocketchat_view())]
