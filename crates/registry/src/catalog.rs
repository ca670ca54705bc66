//! The app's declared messages: every component's `consumes`/`produces`, each schema loaded
//! once, and the [`Contract`] each component's events are checked against.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cloudevent::Event;
use manifest::{Manifest, MessageDecl, SchemaRef};

use crate::schema::{DataSchema, SchemaError, Violations};

/// One schema version as the registry lists it.
#[derive(Debug, Clone)]
pub struct SchemaVersion {
    /// The schema's id in the registry: the event type it describes.
    pub schema_id: String,
    /// `1`, `2`, ... when one type is declared with different schemas.
    pub version: u32,
    /// What the declaration pointed at.
    pub reference: SchemaRef,
    /// The compiled schema.
    pub schema: Arc<DataSchema>,
    /// Its URI: what results' `dataschema` says and what messages reference.
    pub uri: String,
}

/// What one declared type brings: its schema (if any) and data media type.
#[derive(Debug, Clone)]
struct Declared {
    schema: Option<(Arc<DataSchema>, String)>,
    datacontenttype: Option<String>,
}

/// The declarations of one component, as the executor checks them.
#[derive(Debug, Default)]
pub struct Contract {
    consumes: HashMap<String, Declared>,
    produces: HashMap<String, Declared>,
}

impl Contract {
    /// Whether the component declares any schema, so checking can be skipped altogether.
    pub fn is_empty(&self) -> bool {
        self.consumes.values().all(|d| d.schema.is_none())
            && self
                .produces
                .values()
                .all(|d| d.schema.is_none() && d.datacontenttype.is_none())
    }

    /// Checks an event the component is about to handle against the schema declared for its
    /// type in `consumes`. Undeclared types pass.
    pub fn check_input(&self, event: &Event) -> Result<(), Violations> {
        match self
            .consumes
            .get(event.ty())
            .and_then(|d| d.schema.as_ref())
        {
            Some((schema, uri)) => schema.check(event, uri),
            None => Ok(()),
        }
    }

    /// Checks an event the component emitted against its `produces` declaration, and fills in
    /// the declaration's `dataschema` and `datacontenttype` where the event has none.
    pub fn check_output(&self, event: &mut Event) -> Result<(), Violations> {
        let Some(declared) = self.produces.get(event.ty()) else {
            return Ok(());
        };
        if event.datacontenttype().is_none()
            && let Some(media) = &declared.datacontenttype
        {
            let data = event.take_data();
            // The manifest checked the media type; a failure leaves the event as it was.
            if event.set_data(Some(media.clone()), data.clone()).is_err() {
                let _ = event.set_data(None, data);
            }
        }
        if let Some((schema, uri)) = &declared.schema {
            schema.check(event, uri)?;
            if event.dataschema().is_none() {
                // A URI the registry built or a schema's absolute `$id`: always valid.
                let _ = event.set_dataschema(Some(uri.clone()));
            }
        }
        Ok(())
    }
}

/// Every declared message of the app with its schema, loaded once at start-up.
#[derive(Debug, Default)]
pub struct Catalog {
    group: String,
    versions: Vec<SchemaVersion>,
    contracts: BTreeMap<String, Arc<Contract>>,
}

impl Catalog {
    /// Loads and compiles every schema the manifest's components declare (files read, URLs
    /// fetched), each reference once. `registry_base` is where this app's registry is served
    /// (`http://<admin>/registry`): a file's schema without an absolute `$id` is known by its
    /// URL there.
    pub async fn load(manifest: &Manifest, registry_base: &str) -> Result<Catalog, SchemaError> {
        let group = manifest.application.name.clone();
        let mut versions: Vec<SchemaVersion> = Vec::new();
        let mut contracts = BTreeMap::new();
        for (id, component) in &manifest.components {
            let mut contract = Contract::default();
            for (decls, into) in [
                (&component.consumes, &mut contract.consumes),
                (&component.produces, &mut contract.produces),
            ] {
                for decl in decls {
                    let schema = match &decl.dataschema {
                        Some(reference) => {
                            let version =
                                version_for(&mut versions, &group, registry_base, decl, reference)
                                    .await?;
                            Some((version.schema.clone(), version.uri.clone()))
                        }
                        None => None,
                    };
                    let datacontenttype = decl.media_type().map(str::to_owned);
                    into.insert(
                        decl.ty.clone(),
                        Declared {
                            schema,
                            datacontenttype,
                        },
                    );
                }
            }
            contracts.insert(id.to_string(), Arc::new(contract));
        }
        Ok(Catalog {
            group,
            versions,
            contracts,
        })
    }

    /// The contract of component `id` (empty when it declares nothing).
    pub fn contract(&self, id: &str) -> Arc<Contract> {
        self.contracts.get(id).cloned().unwrap_or_default()
    }

    /// The schema group's id: the app's name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Every schema version, in declaration order.
    pub fn versions(&self) -> &[SchemaVersion] {
        &self.versions
    }

    /// The version a declaration's reference was loaded as.
    pub fn version_of(&self, ty: &str, reference: &SchemaRef) -> Option<&SchemaVersion> {
        self.versions
            .iter()
            .find(|v| v.schema_id == ty && &v.reference == reference)
    }
}

/// The version of `decl`'s type for `reference`: the one already loaded, or a new one.
async fn version_for<'a>(
    versions: &'a mut Vec<SchemaVersion>,
    group: &str,
    registry_base: &str,
    decl: &MessageDecl,
    reference: &SchemaRef,
) -> Result<&'a SchemaVersion, SchemaError> {
    if let Some(i) = versions
        .iter()
        .position(|v| v.schema_id == decl.ty && &v.reference == reference)
    {
        return Ok(&versions[i]);
    }
    // The same document may describe several types: compile it once.
    let schema = match versions.iter().find(|v| &v.reference == reference) {
        Some(v) => v.schema.clone(),
        None => Arc::new(DataSchema::load(reference).await?),
    };
    let version = 1 + versions.iter().filter(|v| v.schema_id == decl.ty).count() as u32;
    let uri = match reference {
        SchemaRef::Url(url) => url.to_string(),
        SchemaRef::File(_) => schema.id().map(str::to_owned).unwrap_or_else(|| {
            format!(
                "{}/schemagroups/{}/schemas/{}/versions/{version}",
                registry_base.trim_end_matches('/'),
                crate::document::encode_id(group),
                crate::document::encode_id(&decl.ty)
            )
        }),
    };
    versions.push(SchemaVersion {
        schema_id: decl.ty.clone(),
        version,
        reference: reference.clone(),
        schema,
        uri,
    });
    Ok(versions.last().expect("just pushed"))
}
