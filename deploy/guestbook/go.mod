module github.com/coxswain/coxswain/deploy/guestbook

go 1.26.8
