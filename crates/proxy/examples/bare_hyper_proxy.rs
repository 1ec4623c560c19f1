//! The floor under `keyward proxy`'s instructions per call: hyper's server connection and
//! client connection forwarding each call to one upstream, one upstream connection per
//! client connection and one buffer per write (as `keyward proxy` does), with nothing
//! else: no token, no header changes, no retry. `bench/instructions.sh` counts it beside
//! the proxy and nginx.
//!
//!   cargo run --release -p keyward-proxy --example bare_hyper_proxy -- 127.0.0.1:0 127.0.0.1:19011

use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};

type Sender = Arc<Mutex<Option<client::SendRequest<Incoming>>>>;

async fn forward(sender: Sender, request: Request<Incoming>) -> Result<Response<Incoming>, hyper::Error> {
    let mut taken = sender.lock().unwrap().take().expect("one call at a time per connection");
    let response = taken.send_request(request).await;
    *sender.lock().unwrap() = Some(taken);
    response
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (listen, upstream) = (args.next().expect("listen address"), args.next().expect("upstream host:port"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        println!("bare hyper proxy listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let to_upstream = tokio::net::TcpStream::connect(&upstream).await.expect("upstream");
                to_upstream.set_nodelay(true).expect("nodelay");
                let (sender, connection) =
                    client::Builder::new().writev(false).handshake(TokioIo::new(to_upstream)).await.expect("handshake");
                let sender: Sender = Arc::new(Mutex::new(Some(sender)));
                let service = service_fn(move |request| forward(sender.clone(), request));
                tokio::spawn(connection);
                let _ = server::Builder::new().writev(false).serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}
