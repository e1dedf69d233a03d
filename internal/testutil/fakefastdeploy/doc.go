// Package fakefastdeploy is a fake of fastdeploy's API server and of its
// deploy process, for tests that must speak fastdeploy's real wire format
// where the real server cannot run.
//
// It is written from fastdeploy's source (public repository ephes/fastdeploy),
// not from its documentation:
//   - src/deploy/entrypoints/routers/users.py: POST /token (OAuth2 password
//     form, 401 "Incorrect username or password"), user tokens {user, type, exp}
//   - src/deploy/entrypoints/routers/steps.py, deployments.py, services.py and
//     dependencies.py: POST /steps/, PUT /deployments/finish/, GET /services/,
//     POST /services/sync (nothing to sync),
//     401 "Could not validate credentials", 400 "Something went wrong" for a
//     step of a finished deployment, a repeated finish answered 200 with no event
//   - src/deploy/auth.py, config.py: HS256 JWTs, claims type, deployment|user, exp
//   - src/deploy/entrypoints/fastapi_app.py, adapters/websocket.py: the
//     websocket /deployments/ws/{client_id} with its {"access_token": ...}
//     handshake, re-authentication, the close with a warning 5 s after expiry
//   - src/deploy/domain/model.py, events.py, service_layer/handlers.py,
//     messagebus.py, unit_of_work.py: which events a command raises and in
//     which order (DeploymentFinished before StepDeleted), the server's own
//     clock on a processed step's finished, their JSON shape
//   - src/deploy/tasks.py: what the deploy process sends (DeployTask here).
package fakefastdeploy
